"""Tier `console`: the web console at /console, over HTTP (auth, CSRF, pages) and in a real browser (Debian's
chromium driven through chromedriver by Selenium).  The browser test needs /usr/bin/chromium and
/usr/bin/chromedriver (`.ci/run` installs them) and fails without them, unless LOCALBOX_SKIP_BROWSER=1 (or
LOCALBOX_SKIP_CLIENTS=1, which skips installing them).  Screenshots go to the test's tmp dir, and to
$LOCALBOX_ARTIFACTS when set (`.ci/run`: .ci/artifacts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localbox.testing import LocalboxServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.console)


@pytest.fixture(scope="module")
def box() -> Iterator[LocalboxServer]:
    with LocalboxServer(admin_token="console-admin-token") as server:
        yield server
