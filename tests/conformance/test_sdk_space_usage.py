"""users/get_space_usage: used bytes follow the account's live files; the allocation is --quota."""

from __future__ import annotations

from typing import Any

import pytest
from dropbox import files

pytestmark = pytest.mark.conformance


def test_space_usage_counts_live_files(dbx: Any) -> None:
    before = dbx.users_get_space_usage()
    assert before.used == 0
    assert before.allocation.is_individual()
    assert before.allocation.get_individual().allocated == 2 * 1024**4
    dbx.files_upload(b"a" * 1000, "/u/a.bin")
    dbx.files_upload(b"b" * 234, "/u/b.bin")
    assert dbx.users_get_space_usage().used == 1234
    # Overwriting replaces the old size; old revisions do not count, as on Dropbox.
    dbx.files_upload(b"c" * 10, "/u/a.bin", mode=files.WriteMode.overwrite)
    assert dbx.users_get_space_usage().used == 244
