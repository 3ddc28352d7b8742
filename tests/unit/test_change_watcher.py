"""ChangeWatcher and the longpoll edge: waking, timeouts, no leaked waiters, writes from elsewhere."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import localbox.app as app_module
from localbox.app import Backends, create_app, open_backends
from localbox.config import Settings
from localbox.services.accounts import AccountService
from localbox.services.changes import ChangeWatcher
from localbox.stores.sqlite import SqliteMetadataStore

pytestmark = pytest.mark.unit
T = TypeVar("T")


class CountingStore:
    """A MetadataStore that counts its reads."""

    def __init__(self, inner: SqliteMetadataStore) -> None:
        self.inner = inner
        self.reads = 0

    async def read(self, fn: Callable[[Any], T]) -> T:
        self.reads += 1
        return await self.inner.read(fn)

    async def run(self, fn: Callable[[Any], T]) -> T:
        return await self.inner.run(fn)

    def run_sync(self, fn: Callable[[Any], T]) -> T:
        return self.inner.run_sync(fn)

    async def close(self) -> None:
        await self.inner.close()


def _namespaces(store: SqliteMetadataStore, *ids: str) -> None:
    def _add(tx: Any) -> None:
        for ns in ids:
            tx.insert_namespace(ns, "dbid:owner")

    store.run_sync(_add)


def test_wakes_on_a_change_and_times_out_without(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteMetadataStore(tmp_path / "m.sqlite3")
        _namespaces(store, "1", "2")
        watcher = ChangeWatcher(store, interval=0.02)
        watcher.start()
        try:
            t0 = time.monotonic()
            assert await watcher.wait_beyond("1", 0, 0.3) is False
            assert time.monotonic() - t0 >= 0.3
            waiter = asyncio.ensure_future(watcher.wait_beyond("1", 0, 5))
            other = asyncio.ensure_future(watcher.wait_beyond("2", 0, 0.5))
            await asyncio.sleep(0.1)
            assert watcher.waiting == 2
            await store.run(lambda tx: tx.next_seq("1"))
            assert await asyncio.wait_for(waiter, 1) is True
            assert await other is False  # its namespace did not move
            assert await watcher.wait_beyond("1", 0, 5) is True  # already beyond: at the next tick
            assert await watcher.wait_beyond("gone", 0, 5) is True  # a vanished namespace wakes too
            assert watcher.waiting == 0
        finally:
            await watcher.stop()
            await store.close()

    asyncio.run(main())


def test_cancelled_waits_leave_nothing_behind(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteMetadataStore(tmp_path / "m.sqlite3")
        _namespaces(store, "1")
        watcher = ChangeWatcher(store, interval=0.02)
        watcher.start()
        try:
            tasks = [asyncio.ensure_future(watcher.wait_beyond("1", 0, 60)) for _ in range(50)]
            await asyncio.sleep(0.05)
            assert watcher.waiting == 50
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert watcher.waiting == 0
        finally:
            await watcher.stop()
            await store.close()

    asyncio.run(main())


def test_one_read_per_tick_for_all_waiters(tmp_path: Path) -> None:
    async def main() -> None:
        inner = SqliteMetadataStore(tmp_path / "m.sqlite3")
        _namespaces(inner, *(str(i) for i in range(10)))
        store = CountingStore(inner)
        watcher = ChangeWatcher(store, interval=0.05)
        watcher.start()
        try:
            waits = [watcher.wait_beyond(str(i % 10), 0, 1.0) for i in range(200)]
            assert not any(await asyncio.gather(*waits))
            assert 5 <= store.reads <= 1.0 / 0.05 + 3  # about one per tick, not one per waiter
            idle = store.reads
            await asyncio.sleep(0.3)
            assert store.reads == idle  # nobody waits: no reads at all
        finally:
            await watcher.stop()
            await inner.close()

    asyncio.run(main())


def test_sees_a_write_made_through_another_store(tmp_path: Path) -> None:
    """Another process (the CLI, another node) writes through its own connection to the database."""

    async def main() -> None:
        store = SqliteMetadataStore(tmp_path / "m.sqlite3")
        _namespaces(store, "1")
        watcher = ChangeWatcher(store, interval=0.02)
        watcher.start()
        elsewhere = SqliteMetadataStore(tmp_path / "m.sqlite3")
        try:
            waiter = asyncio.ensure_future(watcher.wait_beyond("1", 0, 5))
            await asyncio.sleep(0.1)
            await elsewhere.run(lambda tx: tx.next_seq("1"))
            assert await asyncio.wait_for(waiter, 1) is True
        finally:
            await elsewhere.close()
            await watcher.stop()
            await store.close()

    asyncio.run(main())


def test_stop_ends_pending_waits(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteMetadataStore(tmp_path / "m.sqlite3")
        _namespaces(store, "1")
        watcher = ChangeWatcher(store, interval=0.02)
        watcher.start()
        waiter = asyncio.ensure_future(watcher.wait_beyond("1", 0, 60))
        await asyncio.sleep(0.05)
        await watcher.stop()
        await asyncio.wait_for(waiter, 1)
        assert await watcher.wait_beyond("1", 0, 60) is False
        await store.close()

    asyncio.run(main())


def test_longpoll_of_a_disconnected_client_unregisters_its_waiter(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real ASGI app: the client goes away mid-longpoll; the handler must stop waiting."""
    settings = Settings(data_dir=tmp_path)
    backends: Backends = open_backends(settings)
    account = AccountService(backends.metadata).create_account("ann@example.com", "Ann Lee")
    token = AccountService(backends.metadata).create_token("ann@example.com")[0]
    built: list[Any] = []
    real_build = app_module.build_services
    monkeypatch.setattr(app_module, "build_services", lambda *a: built.append(real_build(*a)) or built[-1])
    app = create_app(settings, backends)
    services = built[0]
    assert account.root_namespace_id

    async def call(path: str, body: Any, disconnect: asyncio.Event, headers: dict[str, str]) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": f"/2/{path}", "raw_path": f"/2/{path}".encode(), "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
                 "headers": [(k.lower().encode(), v.encode()) for k, v in
                             {"content-type": "application/json", **headers}.items()]}
        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    async def main() -> None:
        lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def lifespan_send(message: dict[str, Any]) -> None:
            await lifespan_out.put(message)

        state: dict[str, Any] = {}
        runner = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": state},
                                           lifespan_in.get, lifespan_send))
        await lifespan_in.put({"type": "lifespan.startup"})
        assert (await lifespan_out.get())["type"] == "lifespan.startup.complete"
        try:
            status, body = await call("files/list_folder/get_latest_cursor", {"path": ""}, asyncio.Event(),
                                      {"authorization": f"Bearer {token}"})
            assert status == 200, body
            cursor = json.loads(body)["cursor"]
            gone = asyncio.Event()
            poll = asyncio.ensure_future(call("files/list_folder/longpoll", {"cursor": cursor, "timeout": 480},
                                              gone, {}))
            await asyncio.sleep(0.3)
            assert services.changes.watcher.waiting == 1
            gone.set()
            await asyncio.wait_for(poll, 2)
            assert services.changes.watcher.waiting == 0
        finally:
            await lifespan_in.put({"type": "lifespan.shutdown"})
            await lifespan_out.get()
            await runner

    asyncio.run(main())
