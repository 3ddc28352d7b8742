"""pytest fixtures for testing code that talks to Dropbox, against localbox (registered as the `localbox`
plugin by `pip install localbox`; nothing here runs unless a test asks for one of the fixtures).

- `localbox_server_session`: one in-memory localbox for the whole session (under pytest-xdist, one
  per worker process), not reset between tests.
- `localbox_server`: that same server, reset before the test: empty, no faults, an empty request
  log, and its seeded account and token back (`.url`, `.token`, `.admin_token`, `.add_fault(...)`,
  `.reset()`, `.requests()`, `.client()`).
- `dropbox_client`: an official `dropbox.Dropbox` for `localbox_server`'s account (full scope, the
  SDK's own retry settings).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from localbox.testing.server import LocalboxServer


@pytest.fixture(scope="session")
def localbox_server_session() -> Iterator[LocalboxServer]:
    """One in-memory localbox for the test session (per xdist worker), shared as it is."""
    from localbox.testing.server import LocalboxServer

    server = LocalboxServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def localbox_server(localbox_server_session: LocalboxServer) -> LocalboxServer:
    """The session's localbox, reset for this test: only its seeded account and token, no faults."""
    localbox_server_session.reset()
    return localbox_server_session


@pytest.fixture()
def dropbox_client(localbox_server: LocalboxServer) -> Any:
    """The official Dropbox SDK client, authenticated to `localbox_server` with a full-scope token."""
    return localbox_server.client()
