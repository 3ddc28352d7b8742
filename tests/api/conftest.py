"""Wire-tier fixtures (on top of tests/conftest.py's `server`, `account` and `http`).

Creating an account shells out to the CLI twice, so most tests share one account per module and isolate
themselves in a fresh top-level folder (`folder`). Tests that need an empty root or a second identity use
the function-scoped `account` fixture instead.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from _apiwire import Api


@pytest.fixture(scope="module")
def http(server: Any) -> Any:
    """Same as tests/conftest.py's `http` (an httpx.Client bound to the server), but one per module:
    building an httpx.Client loads the TLS trust store (~50 ms on a busy machine), which dominated this
    tier's run time when done for each of its ~400 tests. TLS is never used against loopback here."""
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False, verify=False) as c:
        yield c


@pytest.fixture(scope="module")
def shared_account(server: Any) -> Any:
    return server.new_account()


@pytest.fixture()
def api(http: Any, shared_account: Any) -> Api:
    return Api(http, shared_account.token)


@pytest.fixture()
def folder() -> str:
    """A fresh top-level folder name (not created) for one test."""
    return f"/w-{secrets.token_hex(6)}"
