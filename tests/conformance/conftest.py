"""Conformance tier: the official Dropbox SDK (pinned 12.2.4) against a real `localbox serve`.

Uses the shared fixtures from tests/conftest.py (`server`, `dbx`) and tests/harness.py (`make_sdk`,
`LocalServer`). `account` is overridden here with the same meaning (a fresh account with every scope on
the module's server) but served from a small pool that creates accounts ahead of time through the same
CLI (`server.new_account()`) in background threads: each creation is two CLI processes (~0.5 s), which
otherwise dominated the tier's run time.
With LOCALBOX_TEST_NODES=3 (on LOCALBOX_TEST_BACKEND=postgres-s3) every SDK client made here (make_sdk,
`sdk_for`, `per_thread_dbx`) sends each call to the next of the server's three nodes (tests/harness.py).
Helpers live in sdk_helpers.py next to this file; this directory is put on sys.path so that they import
the same way under pytest's `prepend` and `importlib` import modes.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness import make_sdk

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture()
def sdk_for(server: Any) -> Callable[[str], Any]:
    """sdk_for(token) -> an extra official SDK client on the module's server."""
    return lambda token: make_sdk(server, token)


@pytest.fixture()
def per_thread_dbx(server: Any, account: Any) -> Iterator[Callable[[], Any]]:
    """A callable giving the calling thread its own SDK client for `account`
    (requests.Session is not documented as thread-safe)."""
    local = threading.local()

    def get() -> Any:
        c = getattr(local, "dbx", None)
        if c is None:
            c = local.dbx = make_sdk(server, account.token)
        return c

    yield get


class AccountPool:
    """Keeps `ahead` fresh accounts being created in the background; `get()` hands out one unused account."""

    def __init__(self, server: Any, ahead: int = 6, workers: int = 3) -> None:
        self.server = server
        self.ahead = ahead
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="account-pool")
        self.futures: deque[Future[Any]] = deque()
        self.lock = threading.Lock()

    def _create(self) -> Any:
        last: Exception | None = None
        for _ in range(3):  # tolerate a transient "database is locked" from concurrent CLI writers
            try:
                return self.server.new_account()
            except RuntimeError as e:
                last = e
        assert last is not None
        raise last

    def get(self) -> Any:
        with self.lock:
            while len(self.futures) < self.ahead + 1:
                self.futures.append(self.pool.submit(self._create))
            fut = self.futures.popleft()
        return fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def account_pool(server: Any) -> Iterator[AccountPool]:
    pool = AccountPool(server)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture()
def account(account_pool: AccountPool) -> Any:
    """Same contract as tests/conftest.py's `account`: a fresh account with all scopes on `server`."""
    return account_pool.get()
