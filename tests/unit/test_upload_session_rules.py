"""UploadSessionService rules through real stores in a temporary folder (no server)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from localbox.api.context import Services
from localbox.app import Backends, build_services, open_backends
from localbox.config import Settings
from localbox.domain.errors import CallError, DomainError, SessionLookupError, WriteFailure
from localbox.domain.models import Entry, SessionType
from localbox.services.accounts import ALL_SCOPES, Caller
from localbox.services.files import CommitSpec
from localbox.services.upload_sessions import Body, FinishEntry, SessionLimits, commit_entries_tx

pytestmark = pytest.mark.unit

MIB4 = 4 * 1024 * 1024
T = TypeVar("T")


def oracle_hash(data: bytes) -> str:
    digests = b"".join(hashlib.sha256(data[i : i + MIB4]).digest() for i in range(0, len(data), MIB4))
    return hashlib.sha256(digests).hexdigest()


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def body(data: bytes, *, declared: bool = True, chunk: int = 1000) -> Body:
    return Body(_chunks(data, chunk), len(data) if declared else None)


def run(coro: Awaitable[T]) -> T:
    async def wrap() -> T:
        return await coro

    return asyncio.run(wrap())


@dataclass
class World:
    services: Services
    backends: Backends
    caller: Caller
    other: Caller

    def start(self, data: bytes = b"", *, close: bool = False, concurrent: bool = False, **kw: Any) -> str:
        kind = SessionType.CONCURRENT if concurrent else SessionType.SEQUENTIAL
        kw.setdefault("content_hash", None)
        return run(self.services.sessions.start(self.caller, close=close, session_type=kind, body=body(data), **kw))

    def append(self, sid: str, offset: int, data: bytes, *, close: bool = False, caller: Caller | None = None,
               content_hash: str | None = None, declared: bool = True) -> None:
        run(self.services.sessions.append(caller or self.caller, sid, offset, close=close,
                                          content_hash=content_hash, body=body(data, declared=declared)))

    def finish(self, sid: str, offset: int, path: str, data: bytes = b"", mode: str = "add",
               content_hash: str | None = None, **kw: Any) -> Entry:
        return run(self.services.sessions.finish(self.caller, sid, offset, CommitSpec(path, mode, **kw),
                                                 content_hash=content_hash, body=body(data)))

    def read(self, e: Entry) -> bytes:
        async def go() -> bytes:
            return b"".join([c async for c in self.services.files.read(e, 0, e.size)])

        return asyncio.run(go())


def make_world(tmp_path: Path, limits: SessionLimits | None = None) -> tuple[World, Backends]:
    settings = Settings(data_dir=tmp_path)
    backends = open_backends(settings)
    services = build_services(settings, backends)
    if limits is not None:
        services.sessions.limits = limits
    a = services.accounts.create_account("ann@example.com")
    b = services.accounts.create_account("bob@example.com")
    world = World(services, backends, Caller(a, ALL_SCOPES, a.root_namespace_id),
                  Caller(b, ALL_SCOPES, b.root_namespace_id))
    return world, backends


@pytest.fixture()
def w(tmp_path: Path) -> Iterator[World]:
    world, backends = make_world(tmp_path)
    yield world
    asyncio.run(backends.metadata.close())


def lookup_error(fn: Any, *args: Any, **kw: Any) -> SessionLookupError:
    with pytest.raises(SessionLookupError) as e:
        fn(*args, **kw)
    return e.value


# -- sequential sessions -------------------------------------------------------------------------
def test_start_append_finish_round_trip(w: World) -> None:
    data = bytes(range(256)) * 40
    sid = w.start(data[:1000])
    w.append(sid, 1000, data[1000:5000])
    e = w.finish(sid, 5000, "/Up/file.bin", data[5000:])
    assert e.path_display == "/Up/file.bin"
    assert e.size == len(data)
    assert e.content_hash == oracle_hash(data)
    assert w.read(e) == data


def test_multi_block_session(w: World) -> None:
    data = bytes(range(251)) * ((MIB4 + 5000) // 251)
    sid = w.start(data[:MIB4 - 10], content_hash=oracle_hash(data[:MIB4 - 10]))
    w.append(sid, MIB4 - 10, data[MIB4 - 10 :], content_hash=oracle_hash(data[MIB4 - 10 :]))
    e = w.finish(sid, len(data), "/big.bin", content_hash=oracle_hash(b""))
    assert e.content_hash == oracle_hash(data)
    assert w.read(e) == data


def test_incorrect_offset_reports_the_correct_one(w: World) -> None:
    sid = w.start(b"12345")
    for wrong in (0, 4, 6, 10**12):
        err = lookup_error(w.append, sid, wrong, b"x")
        assert err.tags == ("incorrect_offset",) and err.payload == {"correct_offset": 5}
    err = lookup_error(w.finish, sid, 3, "/a")
    assert err.payload == {"correct_offset": 5}
    w.append(sid, 5, b"678")
    assert w.read(w.finish(sid, 8, "/a")) == b"12345678"


def test_retry_of_an_acknowledged_append_is_incorrect_offset(w: World) -> None:
    sid = w.start()
    w.append(sid, 0, b"abc")
    assert lookup_error(w.append, sid, 0, b"abc").payload == {"correct_offset": 3}


def test_closed_session_rejects_appends(w: World) -> None:
    sid = w.start(b"ab")
    w.append(sid, 2, b"cd", close=True)
    assert lookup_error(w.append, sid, 4, b"e").tags == ("closed",)
    assert lookup_error(w.finish, sid, 4, "/x", b"e").tags == ("closed",)
    assert w.read(w.finish(sid, 4, "/x")) == b"abcd"


def test_unknown_and_foreign_sessions_are_not_found(w: World) -> None:
    assert lookup_error(w.append, "pid_upload_session:nope", 0, b"x").tags == ("not_found",)
    sid = w.start(b"mine")
    assert lookup_error(w.append, sid, 4, b"x", caller=w.other).tags == ("not_found",)


def test_finished_session_is_gone(w: World) -> None:
    sid = w.start(b"data")
    w.finish(sid, 4, "/a")
    assert lookup_error(w.finish, sid, 4, "/b").tags == ("not_found",)
    assert lookup_error(w.append, sid, 4, b"x").tags == ("not_found",)


def test_path_failure_on_finish_keeps_the_session(w: World) -> None:
    w.finish(w.start(b"existing"), 8, "/taken")
    sid = w.start(b"new")
    with pytest.raises(WriteFailure) as e:
        w.finish(sid, 3, "/taken", b"er")
    assert e.value.tags == ("conflict", "file")
    assert w.read(w.finish(sid, 5, "/free")) == b"newer"


def test_content_hash_mismatch_leaves_the_offset(w: World) -> None:
    sid = w.start(b"ab")
    with pytest.raises(CallError) as e:
        w.append(sid, 2, b"cd", content_hash=oracle_hash(b"zz"))
    assert e.value.tags == ("content_hash_mismatch",)
    w.append(sid, 2, b"CD", content_hash=oracle_hash(b"CD"))
    assert w.read(w.finish(sid, 4, "/h")) == b"abCD"
    with pytest.raises(CallError):
        w.start(b"xyz", content_hash=oracle_hash(b"xy"))


def test_expired_session_is_not_found(tmp_path: Path) -> None:
    w, backends = make_world(tmp_path, SessionLimits(ttl_seconds=-1))
    try:
        sid = w.start(b"x")
        assert lookup_error(w.append, sid, 1, b"y").tags == ("not_found",)
    finally:
        asyncio.run(backends.metadata.close())


def test_size_limits(tmp_path: Path) -> None:
    w, backends = make_world(tmp_path, SessionLimits(max_session_size=10, max_request_body=8))
    try:
        sid = w.start(b"123456")
        assert lookup_error(w.append, sid, 6, b"12345").tags == ("too_large",)  # 11 > 10
        assert lookup_error(w.append, sid, 6, b"12345", declared=False).tags == ("too_large",)
        w.append(sid, 6, b"7890")  # exactly 10
        with pytest.raises(CallError) as e:
            w.start(b"123456789")  # declared body over the request limit
        assert e.value.tags == ("payload_too_large",)
    finally:
        asyncio.run(backends.metadata.close())


def test_upload_conflict_returns_a_session_to_finish(w: World) -> None:
    services = w.services

    def upload(path: str, data: bytes) -> Entry:
        return run(services.sessions.upload(w.caller, CommitSpec(path, "add"), content_hash=None, body=body(data)))

    upload("/u.txt", b"first")
    with pytest.raises(WriteFailure) as e:
        upload("/u.txt", b"second")
    sid = e.value.payload["upload_session_id"]
    assert w.read(w.finish(sid, 6, "/u2.txt")) == b"second"


# -- concurrent sessions -------------------------------------------------------------------------
def test_concurrent_session_start_rules(w: World) -> None:
    with pytest.raises(CallError) as e:
        w.start(concurrent=True, close=True)
    assert e.value.tags == ("concurrent_session_close_not_allowed",)
    with pytest.raises(CallError) as e:
        w.start(b"data", concurrent=True)
    assert e.value.tags == ("concurrent_session_data_not_allowed",)


def test_concurrent_session_append_rules(w: World) -> None:
    sid = w.start(concurrent=True)
    assert lookup_error(w.append, sid, 100, b"x").tags == ("concurrent_session_invalid_offset",)
    assert lookup_error(w.append, sid, 0, b"x" * 10).tags == ("concurrent_session_invalid_data_size",)
    assert lookup_error(w.append, sid, 0, b"x" * 10, declared=False).tags == (
        "concurrent_session_invalid_data_size",)
    with pytest.raises(CallError) as e:
        w.finish(sid, 0, "/c")
    assert e.value.tags == ("concurrent_session_not_closed",)


def test_concurrent_session_out_of_order(w: World) -> None:
    data = bytes(range(256)) * (MIB4 // 256) + b"last piece"
    sid = w.start(concurrent=True)
    w.append(sid, MIB4, data[MIB4:], close=True)  # the last piece first
    with pytest.raises(CallError) as e:
        w.finish(sid, len(data), "/c")
    assert e.value.tags == ("concurrent_session_missing_data",)
    w.append(sid, 0, data[:MIB4])
    e2 = w.finish(sid, len(data), "/c")
    assert e2.size == len(data)
    assert e2.content_hash == oracle_hash(data)
    assert w.read(e2) == data


# -- batch commits -------------------------------------------------------------------------------
def test_commit_entries_are_independent(w: World) -> None:
    ok = w.start(b"ok", close=True)
    bad_offset = w.start(b"abc", close=True)
    conflicted = w.start(b"zz", close=True)
    still_open = w.start(b"open")
    w.finish(w.start(b"existing"), 8, "/taken")
    entries = [
        FinishEntry(ok, 2, CommitSpec("/b/ok.txt", "add")),
        FinishEntry(bad_offset, 1, CommitSpec("/b/bad.txt", "add")),
        FinishEntry(conflicted, 2, CommitSpec("/taken", "add")),
        FinishEntry("pid_upload_session:missing", 0, CommitSpec("/b/m.txt", "add")),
        FinishEntry(still_open, 4, CommitSpec("/b/open.txt", "add")),
    ]
    outcomes = w.backends.metadata.run_sync(lambda tx: commit_entries_tx(tx, w.caller, entries, True))
    assert isinstance(outcomes[0], Entry) and outcomes[0].path_display == "/b/ok.txt"
    kinds = [(type(o).__name__, o.tags, o.payload) for o in outcomes[1:] if isinstance(o, DomainError)]
    assert kinds == [
        ("SessionLookupError", ("incorrect_offset",), {"correct_offset": 3}),
        ("WriteFailure", ("conflict", "file"), {}),
        ("SessionLookupError", ("not_found",), {}),
        ("SessionLookupError", ("not_closed",), {}),
    ]
    assert w.read(outcomes[0]) == b"ok"
    # the failed sessions are still there; the committed one is not
    assert w.read(w.finish(conflicted, 2, "/b/z.txt")) == b"zz"
    assert lookup_error(w.finish, ok, 2, "/again").tags == ("not_found",)


def test_batch_entries_to_the_same_path_autorename(w: World) -> None:
    sids = [w.start(bytes([i]) * 3, close=True) for i in range(3)]
    entries = [FinishEntry(s, 3, CommitSpec("/same.txt", "add", autorename=True)) for s in sids]
    outcomes = w.backends.metadata.run_sync(lambda tx: commit_entries_tx(tx, w.caller, entries, True))
    assert [o.path_display for o in outcomes if isinstance(o, Entry)] == [
        "/same.txt", "/same (1).txt", "/same (2).txt"]


def test_sweep_forgets_expired_sessions_and_their_staging(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(data_dir=tmp_path, session_ttl=0.2)
        backends = open_backends(settings)
        svc = build_services(settings, backends)
        acct = svc.accounts.create_account("sweep@example.com")
        caller = Caller(acct, ALL_SCOPES, acct.root_namespace_id)
        sid = await svc.sessions.start(caller, close=False, session_type=SessionType.SEQUENTIAL,
                                       content_hash=None, body=Body(_chunks(b"partial tail", 4), 12))
        assert (backends.blobs.staging_dir / sid).is_dir()
        assert await svc.sessions.sweep_expired() == 0  # not expired yet
        await asyncio.sleep(0.3)
        assert await svc.sessions.sweep_expired() == 1
        assert not (backends.blobs.staging_dir / sid).exists()
        assert await backends.metadata.read(lambda tx: tx.get_session(sid)) is None
        await backends.metadata.close()

    asyncio.run(scenario())
