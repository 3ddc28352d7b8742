"""Shared fixtures: a real `localbox serve` process on a loopback port, driven over a real socket.

Every test that needs a server gets one through `server` (one process per test module, for speed)
and isolates itself by creating its own account with `server.new_account()`.  The classes behind
the fixtures live in harness.py, importable as `from harness import LocalServer`.

LOCALBOX_TEST_BACKEND (sqlite, postgres, postgres-s3) and LOCALBOX_TEST_NODES (1, or N processes per
server on the shared stores, requests spread round-robin) choose what every server runs on (#5).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from harness import Account, LocalServer, backend_name, free_port, local_session, make_sdk, node_count, running_server

__all__ = ["Account", "LocalServer", "free_port", "local_session", "make_sdk", "running_server"]


def pytest_report_header() -> str:
    return f"localbox test servers: LOCALBOX_TEST_BACKEND={backend_name()} LOCALBOX_TEST_NODES={node_count()}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with running_server(tmp_path_factory.mktemp("srv") / "data") as srv:
        yield srv


@pytest.fixture()
def account(server: LocalServer) -> Account:
    return server.new_account()


@pytest.fixture()
def dbx(server: LocalServer, account: Account) -> Any:
    """The official SDK, authenticated as a fresh account with every scope."""
    return make_sdk(server, account.token)


@pytest.fixture()
def http(server: LocalServer) -> Iterator[Any]:
    """A raw HTTP client (httpx) bound to the server, for exact wire checks."""
    import httpx

    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as c:
        yield c

