"""Tier `transfer`: the `localbox upload | download | ls` client (localbox/client) as a user runs it, a
subprocess, against an in-memory localbox started by the test (localbox.testing) whose faults and request
log show what the client did on the wire.  Results are checked through the official SDK.  Helpers live in
transfer_helpers.py (a conftest is not importable by name when the whole suite runs)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # helpers next to this file import the same way in every import mode
    sys.path.insert(0, str(HERE))

from localbox.testing import LocalboxServer  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.transfer)


@pytest.fixture(scope="module")
def box_server() -> Iterator[LocalboxServer]:
    with LocalboxServer() as server:
        yield server


@pytest.fixture()
def box(box_server: LocalboxServer) -> LocalboxServer:
    """The module's server, reset: the seeded account and token, no faults, an empty request log."""
    box_server.reset()
    return box_server


