"""Real-client tier: Debian's rclone and the official JavaScript SDK against a `localbox serve` over HTTPS.

The server runs with `--tls`: its own CA and a certificate whose SANs cover the Dropbox host names. rclone cannot
be given an API host, so it reaches the server through HTTPS_PROXY = our CONNECT proxy (connect_proxy.py), which
sends every tunnel to the server's free port; the JS SDK is pointed at `127.0.0.1:<port>` with its `domain`
options. Each test gets a fresh account, and what the clients did is checked again on the server side through
the Python SDK over the same HTTPS port. Helpers live in clients_harness.py.

The tier needs `rclone` on PATH and `node` with tests/clients/js/node_modules (`npm ci` there); `.ci/run` installs
both. When they are missing the tests fail; set LOCALBOX_SKIP_CLIENTS=1 to skip the tier on purpose.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # helpers next to this file import the same way in every import mode
    sys.path.insert(0, str(HERE))

from clients_harness import Client, Rclone, TlsServer, https_sdk, require, tls_server  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = os.environ.get("LOCALBOX_SKIP_CLIENTS") == "1"
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.clients)
            if skip:
                item.add_marker(pytest.mark.skip(reason="LOCALBOX_SKIP_CLIENTS=1"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """One HTTPS `localbox serve` (+ CONNECT proxy to it) per test module."""
    with tls_server(tmp_path_factory.mktemp("tls")) as t:
        yield t


@pytest.fixture()
def client(tls: TlsServer, tmp_path: Path) -> Iterator[Client]:
    """rclone and the Python SDK, both over HTTPS, as a fresh account."""
    require("rclone", "apt-get install -y rclone; .ci/run does it")
    account = tls.server.new_account()
    with https_sdk(tls, account.token) as dbx:  # closed after the test: no idle connection outlives it
        yield Client(account, Rclone(tls, account.token, tmp_path / "rclone-home"), dbx)
