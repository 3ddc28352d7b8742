"""The MetadataStore contract, run against every backend: SQLite on a temporary file and PostgreSQL on a
database of its own (tests/pg.py).  Transactions, compare-and-set, listings, leases."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stores.legacy import make_legacy

from localbox.domain.models import (
    Account,
    Entry,
    EntryKind,
    Job,
    JobState,
    Piece,
    SessionState,
    SessionType,
    UploadSession,
)
from localbox.stores.sqlite import SCHEMA_VERSION, SqliteMetadataStore

pytestmark = pytest.mark.unit


def close(store: Any) -> None:
    asyncio.run(store.close())


BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="module")
def pg_store() -> Iterator[Any]:
    with pg.database() as url:
        from localbox.stores.postgres import PostgresMetadataStore

        s = PostgresMetadataStore(url)
        yield s
        close(s)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        s = request.getfixturevalue("pg_store")
        s.run_sync(lambda tx: tx.reset_all())  # each test starts from an empty database
        yield s
        return
    s = SqliteMetadataStore(tmp_path / "db" / "metadata.sqlite3")
    yield s
    close(s)


def account(n: int = 1) -> Account:
    return Account(f"dbid:{n:035d}", f"user{n}@example.com", "Ann", "Example", f"{1000 + n}", 1.5)


def session(sid: str = "s1", offset: int = 0, blocks: list[bytes] | None = None) -> UploadSession:
    return UploadSession(sid, "dbid:x", SessionType.SEQUENTIAL, offset, False, 10.0, 20.0, blocks or [])


_ids = itertools.count()


def entry(ns: str, path_lower: str, seq: int = 1, kind: EntryKind = EntryKind.FILE) -> Entry:
    return Entry(namespace_id=ns, path_lower=path_lower, path_display=path_lower.upper(),
                 name=path_lower.rsplit("/", 1)[1], kind=kind, id=f"id:{next(_ids)}", seq=seq)


class Boom(Exception):
    pass


# -- transactions --------------------------------------------------------------------------------
def test_run_sync_commits(store: Any) -> None:
    a = account()

    def create(tx: Any) -> str:
        tx.insert_account(a)
        tx.insert_namespace(a.root_namespace_id, a.account_id)
        return "done"

    assert store.run_sync(create) == "done"
    assert store.run_sync(lambda tx: tx.get_account(a.account_id)) == a
    assert store.run_sync(lambda tx: tx.get_account_by_email("USER1@example.com")) == a  # NOCASE
    assert store.run_sync(lambda tx: tx.namespace_owner(a.root_namespace_id)) == a.account_id


def test_run_sync_rolls_back_on_error(store: Any) -> None:
    a = account()

    def failing(tx: Any) -> None:
        tx.insert_account(a)
        tx.insert_namespace(a.root_namespace_id, a.account_id)
        tx.next_seq(a.root_namespace_id)
        raise Boom

    with pytest.raises(Boom):
        store.run_sync(failing)
    assert store.run_sync(lambda tx: tx.get_account(a.account_id)) is None
    assert store.run_sync(lambda tx: tx.namespace_owner(a.root_namespace_id)) is None
    # the store is still usable after a rollback
    store.run_sync(lambda tx: tx.insert_account(a))
    assert store.run_sync(lambda tx: tx.get_account(a.account_id)) == a


def test_async_run_commits_and_rolls_back(store: Any) -> None:
    a, b = account(1), account(2)

    async def go() -> None:
        await store.run(lambda tx: tx.insert_account(a))

        def failing(tx: Any) -> None:
            tx.insert_account(b)
            raise Boom

        with pytest.raises(Boom):
            await store.run(failing)

    asyncio.run(go())
    assert store.run_sync(lambda tx: tx.get_account(a.account_id)) == a
    assert store.run_sync(lambda tx: tx.get_account(b.account_id)) is None


def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    s = SqliteMetadataStore(path)
    s.run_sync(lambda tx: tx.insert_account(account()))
    close(s)
    s2 = SqliteMetadataStore(path)
    try:
        assert s2.run_sync(lambda tx: tx.get_account(account().account_id)) == account()
    finally:
        close(s2)


def test_a_reset_file_opens_again(tmp_path: Path) -> None:
    """`localbox reset` on a server with an on-disk SQLite file, then a restart: the reset must leave
    the file's schema revision (it once emptied alembic_version, and the file no longer opened)."""
    path = tmp_path / "m.sqlite3"
    s = SqliteMetadataStore(path)
    s.run_sync(lambda tx: tx.insert_account(account()))
    s.run_sync(lambda tx: tx.reset_all())
    close(s)
    s2 = SqliteMetadataStore(path)
    try:
        assert s2.run_sync(lambda tx: tx.get_account(account().account_id)) is None
        s2.run_sync(lambda tx: tx.insert_account(account()))
    finally:
        close(s2)


def test_seq_counter(store: Any) -> None:
    store.run_sync(lambda tx: tx.insert_namespace("77", "dbid:x"))
    assert store.run_sync(lambda tx: tx.current_seq("77")) == 0
    assert store.run_sync(lambda tx: [tx.next_seq("77"), tx.next_seq("77")]) == [1, 2]

    def bump_then_fail(tx: Any) -> None:
        tx.next_seq("77")
        raise Boom

    with pytest.raises(Boom):
        store.run_sync(bump_then_fail)
    assert store.run_sync(lambda tx: tx.current_seq("77")) == 2
    assert store.run_sync(lambda tx: tx.current_seq("unknown")) == 0


# -- sessions ------------------------------------------------------------------------------------
def test_session_round_trip(store: Any) -> None:
    blocks = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    s = session(offset=5, blocks=blocks)
    store.run_sync(lambda tx: tx.insert_session(s))
    got = store.run_sync(lambda tx: tx.get_session("s1"))
    assert got == s
    assert store.run_sync(lambda tx: tx.get_session("nope")) is None


def test_update_session_compare_and_set(store: Any) -> None:
    store.run_sync(lambda tx: tx.insert_session(session(offset=0)))
    d = hashlib.sha256(b"x").digest()
    first = session(offset=100, blocks=[d])
    assert store.run_sync(lambda tx: tx.update_session(first, 0)) is True
    stale = session(offset=200, blocks=[d, d])
    assert store.run_sync(lambda tx: tx.update_session(stale, 0)) is False
    got = store.run_sync(lambda tx: tx.get_session("s1"))
    assert got is not None and got.offset == 100 and got.blocks == [d]
    done = session(offset=100, blocks=[d])
    done.closed, done.state = True, SessionState.COMMITTED
    assert store.run_sync(lambda tx: tx.update_session(done, 100)) is True
    got = store.run_sync(lambda tx: tx.get_session("s1"))
    assert got is not None and got.closed and got.state == SessionState.COMMITTED
    assert store.run_sync(lambda tx: tx.update_session(session("missing", 1), 0)) is False


def test_pieces_ordered_and_replaced(store: Any) -> None:
    d1, d2, d3 = (hashlib.sha256(bytes([i])).digest() for i in range(3))

    def put(tx: Any) -> None:
        tx.insert_piece("s1", Piece(8, 4, (d2,)))
        tx.insert_piece("s1", Piece(0, 8, (d1, d1)))
        tx.insert_piece("s2", Piece(0, 1, (d3,)))
        tx.insert_piece("s1", Piece(8, 5, (d3,)))  # a retry of the same offset replaces it

    store.run_sync(put)
    assert store.run_sync(lambda tx: tx.list_pieces("s1")) == [Piece(0, 8, (d1, d1)), Piece(8, 5, (d3,))]
    assert store.run_sync(lambda tx: tx.list_pieces("none")) == []


# -- jobs ----------------------------------------------------------------------------------------
def test_jobs_lifecycle(store: Any) -> None:
    jobs = [Job(f"j{i}", "dbid:x", "finish_batch", JobState.PENDING, created, "{}")
            for i, created in enumerate([5.0, 1.0, 3.0])]

    def put(tx: Any) -> None:
        for j in jobs:
            tx.insert_job(j)

    store.run_sync(put)
    assert [j.job_id for j in store.run_sync(lambda tx: tx.pending_jobs())] == ["j1", "j2", "j0"]
    store.run_sync(lambda tx: tx.complete_job("j1", '{"ok": 1}', 100.0))
    store.run_sync(lambda tx: tx.complete_job("j2", '{"ok": 2}', 200.0))
    got = store.run_sync(lambda tx: tx.get_job("j1"))
    assert got is not None and got.state == JobState.COMPLETE and got.result == '{"ok": 1}' and got.completed == 100.0
    assert [j.job_id for j in store.run_sync(lambda tx: tx.pending_jobs())] == ["j0"]
    assert store.run_sync(lambda tx: tx.delete_jobs_before(150.0)) == 1
    assert store.run_sync(lambda tx: tx.get_job("j1")) is None
    assert store.run_sync(lambda tx: tx.get_job("j2")) is not None
    assert store.run_sync(lambda tx: tx.get_job("j0")) is not None  # pending jobs are never purged


# -- entries -------------------------------------------------------------------------------------
def put_all(store: Any, entries: list[Entry]) -> None:
    def put(tx: Any) -> None:
        for e in entries:
            tx.put_entry(e)

    store.run_sync(put)


def listing(store: Any, ns: str, parent: str, **kw: Any) -> list[str]:
    kw.setdefault("after", "")
    kw.setdefault("limit", 1000)
    return [e.path_lower for e in store.run_sync(lambda tx: tx.list_entries(ns, parent, **kw))]


def test_entry_round_trip_and_replace(store: Any) -> None:
    e = entry("1", "/a/b.txt", seq=3)
    e.blocks = [hashlib.sha256(b"1").digest(), hashlib.sha256(b"2").digest()]
    e.size, e.content_hash, e.rev = 7, "ab" * 32, "0123456789"
    put_all(store, [e])
    assert store.run_sync(lambda tx: tx.get_entry("1", "/a/b.txt")) == e
    assert store.run_sync(lambda tx: tx.get_entry("2", "/a/b.txt")) is None
    assert store.run_sync(lambda tx: tx.get_entry_by_id(e.id)) == e
    e2 = entry("1", "/a/b.txt", seq=4)
    put_all(store, [e2])
    assert store.run_sync(lambda tx: tx.get_entry("1", "/a/b.txt")) == e2
    dead = entry("1", "/gone", kind=EntryKind.DELETED)
    put_all(store, [dead])
    assert store.run_sync(lambda tx: tx.get_entry_by_id(dead.id)) is None
    assert store.run_sync(lambda tx: tx.get_entry("1", "/gone")) == dead


def test_list_entries_children_and_recursive(store: Any) -> None:
    paths = ["/b", "/a", "/a/z", "/a/c", "/a/c/d", "/ab", "/ab/x", "/a b", "/a.b"]
    put_all(store, [entry("1", p, seq=i + 1) for i, p in enumerate(paths)])
    put_all(store, [entry("2", "/a/other-namespace")])
    assert listing(store, "1", "", recursive=False) == ["/a", "/a b", "/a.b", "/ab", "/b"]
    assert listing(store, "1", "/a", recursive=False) == ["/a/c", "/a/z"]
    assert listing(store, "1", "/a", recursive=True) == ["/a/c", "/a/c/d", "/a/z"]
    assert listing(store, "1", "", recursive=True) == sorted(paths)
    assert listing(store, "1", "/a/c/d", recursive=True) == []
    # paging with `after` and `limit`
    assert listing(store, "1", "", recursive=True, limit=3) == ["/a", "/a b", "/a.b"]
    assert listing(store, "1", "", recursive=True, after="/a.b", limit=3) == ["/a/c", "/a/c/d", "/a/z"]
    # seq window: min_seq < seq <= max_seq  (seq = position in `paths` + 1)
    assert listing(store, "1", "", recursive=True, min_seq=2, max_seq=5) == ["/a/c", "/a/c/d", "/a/z"]
    assert listing(store, "1", "", recursive=True, max_seq=2) == ["/a", "/b"]


def test_list_entries_like_wildcards_are_literal(store: Any) -> None:
    paths = ["/a_b", "/a_b/in", "/axb", "/axb/out", "/p%", "/p%/in", "/pq", "/pq/out", "/s\\", "/s\\/in", "/sx/out"]
    put_all(store, [entry("1", p) for p in paths])
    assert listing(store, "1", "/a_b", recursive=True) == ["/a_b/in"]
    assert listing(store, "1", "/p%", recursive=True) == ["/p%/in"]
    assert listing(store, "1", "/s\\", recursive=True) == ["/s\\/in"]


# Random namespaces: one store, one fresh namespace per example.
_NAMES = st.text(st.sampled_from("ab_%\\ .é"), min_size=1, max_size=2)
_PATHS = st.lists(_NAMES, min_size=1, max_size=3).map(lambda ns: "".join("/" + n for n in ns))


@pytest.fixture(scope="module", params=BACKENDS)
def shared_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_store")
        return
    with tempfile.TemporaryDirectory() as d:
        s = SqliteMetadataStore(Path(d) / "m.sqlite3")
        yield s
        close(s)


_ns_counter = itertools.count(1)


@settings(max_examples=60, deadline=None)
@given(
    items=st.dictionaries(_PATHS, st.integers(1, 8), min_size=1, max_size=25),
    parent_pick=st.integers(0, 100),
    recursive=st.booleans(),
    limit=st.integers(1, 6),
    min_seq=st.one_of(st.none(), st.integers(0, 8)),
    max_seq=st.one_of(st.none(), st.integers(0, 8)),
)
def test_list_entries_matches_oracle(
    shared_store: Any, items: dict[str, int], parent_pick: int, recursive: bool, limit: int,
    min_seq: int | None, max_seq: int | None,
) -> None:
    ns = f"hyp{next(_ns_counter)}"
    put_all(shared_store, [entry(ns, p, seq) for p, seq in items.items()])
    parents = sorted({""} | {p.rsplit("/", 1)[0] for p in items} | set(items))
    parent = parents[parent_pick % len(parents)]

    def below(p: str) -> bool:
        if not p.startswith(parent + "/"):
            return False
        return recursive or "/" not in p[len(parent) + 1 :]

    expected = sorted(
        p for p, seq in items.items()
        if below(p) and (min_seq is None or seq > min_seq) and (max_seq is None or seq <= max_seq)
    )
    # page through with `after` = last path of the previous page
    got: list[str] = []
    after = ""
    while True:
        page = listing(shared_store, ns, parent, recursive=recursive, after=after, limit=limit,
                       min_seq=min_seq, max_seq=max_seq)
        assert len(page) <= limit
        got += page
        if len(page) < limit:
            break
        after = page[-1]
    assert got == expected


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(_PATHS, min_size=1, max_size=25, unique=True),
    parent_pick=st.integers(0, 100),
    recursive=st.booleans(),
    limit=st.integers(1, 6),
    since=st.integers(0, 25),
    span=st.integers(0, 25),
)
def test_list_changes_matches_oracle(
    shared_store: Any, items: list[str], parent_pick: int, recursive: bool, limit: int,
    since: int, span: int,
) -> None:
    """The change feed query: below the folder, since < seq <= upto, in seq order, paged by seq."""
    ns = f"chg{next(_ns_counter)}"
    put_all(shared_store, [entry(ns, p, seq) for seq, p in enumerate(items, 1)])
    parents = sorted({""} | {p.rsplit("/", 1)[0] for p in items} | set(items))
    parent = parents[parent_pick % len(parents)]
    upto = since + span

    def below(p: str) -> bool:
        return p.startswith(parent + "/") and (recursive or "/" not in p[len(parent) + 1 :])

    expected = [p for seq, p in enumerate(items, 1) if below(p) and since < seq <= upto]
    got: list[str] = []
    start = since
    while True:
        page = shared_store.run_sync(lambda tx, start=start: tx.list_changes(
            ns, parent, recursive=recursive, since=start, upto=upto, limit=limit))
        assert len(page) <= limit and [e.seq for e in page] == sorted(e.seq for e in page)
        got += [e.path_lower for e in page]
        if len(page) < limit:
            break
        start = page[-1].seq
    assert got == expected


def test_byte_count_follows_writes_replacements_and_deletions(store: Any) -> None:
    a = account(7)

    def setup(tx: Any) -> None:
        tx.insert_account(a)
        tx.insert_namespace(a.root_namespace_id, a.account_id)
        f = entry(a.root_namespace_id, "/f")
        f.size = 100
        tx.put_entry(f)
        f.size = 40  # overwritten by a smaller file
        tx.put_entry(f)
        g = entry(a.root_namespace_id, "/g")
        g.size = 7
        tx.put_entry(g)
        tx.put_entry(entry(a.root_namespace_id, "/g", kind=EntryKind.DELETED))  # deleted
        tx.put_entry(entry(a.root_namespace_id, "/d", kind=EntryKind.FOLDER))

    store.run_sync(setup)
    assert store.run_sync(lambda tx: tx.bytes_used(a.account_id)) == 40


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "metadata.sqlite3"
    first = SqliteMetadataStore(path)
    a = account(8)

    def setup(tx: Any) -> None:
        tx.insert_account(a)
        tx.insert_namespace(a.root_namespace_id, a.account_id)
        f = entry(a.root_namespace_id, "/kept")
        f.size = 1234
        tx.put_entry(f)

    first.run_sync(setup)
    close(first)
    # Make it what version 1 wrote: no quota, no byte counter (and no Alembic yet).
    make_legacy(path, 1)
    db = sqlite3.connect(path)
    db.executescript("DROP INDEX revisions_path;")
    db.close()

    again = SqliteMetadataStore(path)
    try:
        assert again.run_sync(lambda tx: tx.get_account(a.account_id)) == a
        assert again.run_sync(lambda tx: tx.bytes_used(a.account_id)) == 1234
        kept = again.run_sync(lambda tx: tx.get_entry(a.root_namespace_id, "/kept"))
        assert kept is not None and kept.size == 1234
    finally:
        close(again)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    db.close()


# -- leases (#5): what lets any node serve any request ------------------------------------------------
def _job(job_id: str, account: str, created: float, run_after: float | None = None) -> Job:
    return Job(job_id, account, "finish_batch", JobState.PENDING, created, "{}", run_after=run_after)


def test_jobs_are_claimed_oldest_first_one_per_account(store: Any) -> None:
    def put(tx: Any) -> None:
        for j in (_job("a2", "acct-a", 2.0), _job("a1", "acct-a", 1.0), _job("b1", "acct-b", 3.0),
                  _job("c1", "acct-c", 0.5, run_after=1e18)):
            tx.insert_job(j)

    store.run_sync(put)
    claim = lambda owner, now: store.run_sync(lambda tx: tx.claim_job(owner, now, now + 10))  # noqa: E731
    first = claim("n1", 100.0)
    assert first is not None and first.job_id == "a1"  # c1 is held back, so it neither runs nor blocks
    second = claim("n2", 100.0)
    assert second is not None and second.job_id == "b1"  # a2 waits for a1: each account in order
    assert claim("n3", 100.0) is None
    # n1's lease lapses: another node takes a1 over; n1 may no longer commit it.
    taken = claim("n3", 111.0)
    assert taken is not None and taken.job_id == "a1"
    assert store.run_sync(lambda tx: tx.hold_job("a1", "n1")) is False
    assert store.run_sync(lambda tx: tx.hold_job("a1", "n3")) is True
    assert store.run_sync(lambda tx: tx.renew_job("a1", "n1", 200.0)) is False
    store.run_sync(lambda tx: tx.complete_job("a1", "[]", 112.0))
    assert store.run_sync(lambda tx: tx.hold_job("a1", "n3")) is False  # complete: nobody commits it again
    nxt = claim("n1", 112.0)
    assert nxt is not None and nxt.job_id == "a2"
    assert store.run_sync(lambda tx: tx.pending_before("acct-a", 5.0, 112.0)) is True
    assert store.run_sync(lambda tx: tx.pending_before("acct-c", 5.0, 112.0)) is False  # held back
    assert store.run_sync(lambda tx: tx.release_leases()) >= 1
    again = claim("n9", 112.0)
    assert again is not None and again.job_id in ("a2", "b1")


def test_session_lease_excludes_other_owners_until_it_lapses(store: Any) -> None:
    store.run_sync(lambda tx: tx.insert_session(session("s9")))
    lock = lambda owner, now: store.run_sync(lambda tx: tx.lock_session("s9", owner, now, now + 30))  # noqa: E731
    assert lock("call-1", 100.0) is True
    assert lock("call-2", 110.0) is False
    assert lock("call-1", 110.0) is True  # renewal by its holder
    assert lock("call-2", 141.0) is True  # lapsed
    store.run_sync(lambda tx: tx.unlock_session("s9", "call-1"))  # not the holder: no effect
    assert lock("call-1", 142.0) is False
    store.run_sync(lambda tx: tx.unlock_session("s9", "call-2"))
    assert lock("call-1", 142.0) is True
    assert store.run_sync(lambda tx: tx.lock_session("missing", "x", 1.0, 2.0)) is False


# -- bulk methods (batch commits: a few statements for many entries) -------------------------------
def test_get_sessions_and_mark_sessions_in_bulk(store: Any) -> None:
    ids = [f"s{i:04d}" for i in range(1200)]  # more than one statement's worth of parameters on SQLite

    def insert(tx: Any) -> None:
        for i in ids:
            tx.insert_session(session(i, offset=3, blocks=[hashlib.sha256(i.encode()).digest()]))

    store.run_sync(insert)
    got = store.run_sync(lambda tx: tx.get_sessions([*ids[::-1], "missing"]))
    assert set(got) == set(ids)
    assert got["s0007"] == session("s0007", offset=3, blocks=[hashlib.sha256(b"s0007").digest()])
    assert store.run_sync(lambda tx: tx.get_sessions([])) == {}
    marked = ids[100:700]
    store.run_sync(lambda tx: tx.mark_sessions(marked, SessionState.COMMITTED))
    after = store.run_sync(lambda tx: tx.get_sessions(ids))
    assert {i for i, s in after.items() if s.state == SessionState.COMMITTED and s.closed} == set(marked)
    assert all(not after[i].closed and after[i].state == SessionState.OPEN for i in ids[:100] + ids[700:])
    assert after["s0100"].blocks == [hashlib.sha256(b"s0100").digest()]  # blocks untouched


def test_get_entries_reads_many_paths_of_one_namespace(store: Any) -> None:
    live = [entry("1", f"/d/f{i}") for i in range(700)]
    dead = entry("1", "/d/gone", kind=EntryKind.DELETED)
    put_all(store, [*live, dead, entry("2", "/d/f1")])
    wanted = [e.path_lower for e in live] + ["/d/gone", "/d/nothing"]
    got = store.run_sync(lambda tx: tx.get_entries("1", wanted))
    assert got == {e.path_lower: e for e in [*live, dead]}  # deletion markers included, only namespace 1
    assert store.run_sync(lambda tx: tx.get_entries("3", ["/d/f1"])) == {}


def test_put_entries_last_wins_and_keeps_the_byte_count(store: Any) -> None:
    a = account(8)
    ns = a.root_namespace_id
    old = entry(ns, "/old")
    old.size = 1000

    def setup(tx: Any) -> None:
        tx.insert_account(a)
        tx.insert_namespace(ns, a.account_id)
        tx.put_entry(old)

    store.run_sync(setup)
    first, second = entry(ns, "/f"), entry(ns, "/f", seq=2)
    first.size, second.size = 500, 30  # the same path twice in one call: the second is what stays
    smaller = entry(ns, "/old", seq=3)
    smaller.size = 10
    batch = [entry(ns, "/d", kind=EntryKind.FOLDER), first, second, smaller]
    batch += [entry(ns, f"/d/x{i}") for i in range(600)]  # size 0 each
    store.run_sync(lambda tx: tx.put_entries(batch))
    assert store.run_sync(lambda tx: tx.get_entry(ns, "/f")) == second
    assert store.run_sync(lambda tx: tx.get_entry(ns, "/old")) == smaller
    assert len(store.run_sync(lambda tx: tx.list_entries(ns, "/d", recursive=False, after="", limit=1000))) == 600
    assert store.run_sync(lambda tx: tx.bytes_used(a.account_id)) == 30 + 10
    store.run_sync(lambda tx: tx.put_entries([entry(ns, "/f", kind=EntryKind.DELETED)]))
    assert store.run_sync(lambda tx: tx.bytes_used(a.account_id)) == 10
    store.run_sync(lambda tx: tx.put_entries([]))


def test_keep_revisions_in_bulk_ignores_a_rev_kept_twice(store: Any) -> None:
    versions = []
    for i in range(3):
        v = entry("1", "/f", seq=i + 1)
        v.rev, v.size = f"{i:010x}", i
        versions.append(v)
    store.run_sync(lambda tx: tx.keep_revisions([*versions, versions[0]]))
    assert store.run_sync(lambda tx: tx.get_entry_by_rev(versions[1].rev)) == versions[1]
    kept = store.run_sync(lambda tx: tx.list_revisions(namespace_id="1", path_lower="/f", limit=10))
    assert sorted(v.rev for v in kept) == [v.rev for v in versions]
    store.run_sync(lambda tx: tx.keep_revisions([]))


def test_advance_seq_moves_the_counter_by_many(store: Any) -> None:
    store.run_sync(lambda tx: tx.insert_namespace("78", "dbid:x"))
    assert store.run_sync(lambda tx: tx.advance_seq("78", 5)) == 5
    assert store.run_sync(lambda tx: [tx.next_seq("78"), tx.advance_seq("78", 10)]) == [6, 16]

    def then_fail(tx: Any) -> None:
        tx.advance_seq("78", 3)
        raise Boom

    with pytest.raises(Boom):
        store.run_sync(then_fail)
    assert store.run_sync(lambda tx: tx.current_seq("78")) == 16


def test_bulk_commits_into_one_namespace_are_serialized(store: Any) -> None:
    """What a batch commit does (read the counter and the paths, hand out seqs, write, advance the
    counter once), from many transactions at once: every one sees the counter it leaves to the next."""
    store.run_sync(lambda tx: tx.insert_namespace("901", "dbid:x"))

    def batch(tx: Any) -> int:
        before = tx.current_seq("901")
        paths = [f"/b{before}/f{i}" for i in range(3)]
        assert tx.get_entries("901", paths) == {}
        tx.put_entries([entry("901", p, seq=before + i + 1) for i, p in enumerate(paths)])
        assert tx.advance_seq("901", 3) == before + 3
        return before

    async def go() -> list[int]:
        return list(await asyncio.gather(*(store.run(batch) for _ in range(30))))

    seen = asyncio.run(go())
    assert sorted(seen) == list(range(0, 90, 3))
    assert store.run_sync(lambda tx: tx.current_seq("901")) == 90


def test_concurrent_commits_into_one_namespace_are_serialized(store: Any) -> None:
    """Many transactions read-then-write one namespace's counter at once: none loses an update (on
    PostgreSQL through the per-namespace lock and retries; on SQLite through its single writer)."""
    store.run_sync(lambda tx: tx.insert_namespace("900", "dbid:x"))

    def bump(tx: Any) -> int:
        before = tx.current_seq("900")
        e = entry("900", f"/f{before}", seq=before + 1)
        tx.put_entry(e)
        assert tx.next_seq("900") == before + 1
        return before

    async def go() -> list[int]:
        return list(await asyncio.gather(*(store.run(bump) for _ in range(40))))

    seen = asyncio.run(go())
    assert sorted(seen) == list(range(40))
    assert store.run_sync(lambda tx: tx.current_seq("900")) == 40


def test_team_member_suspension_round_trip(store: Any) -> None:
    from localbox.domain.teams import Team, TeamMember

    acct = account(7)
    team = Team("dbtid:t", "T", "900", 1.0)
    member = TeamMember("dbmid:m", team.team_id, acct.account_id, False, 2.0)

    def _setup(tx: Any) -> None:
        tx.insert_account(acct)
        tx.insert_team(team)
        tx.insert_team_member(member)

    store.run_sync(_setup)
    assert store.run_sync(lambda tx: tx.get_team_member("dbmid:m")).suspended is None
    store.run_sync(lambda tx: tx.set_team_member_suspended("dbmid:m", 5.0))
    got = store.run_sync(lambda tx: tx.team_member_of_account(acct.account_id))
    assert got is not None and got.suspended == 5.0 and got.active
    listed = store.run_sync(lambda tx: tx.list_team_members(team.team_id, after="", limit=10, include_removed=False))
    assert [m.suspended for m in listed] == [5.0]
    store.run_sync(lambda tx: tx.set_team_member_suspended("dbmid:m", None))
    assert store.run_sync(lambda tx: tx.get_team_member("dbmid:m")).suspended is None


def test_settings_first_writer_wins_and_resets_keep_them(store: Any) -> None:
    """Per-database settings (the cursor signing key, #7): every node racing to make one ends up with
    the same value, and a reset of the test server's state keeps it."""
    key = f"test-{secrets.token_hex(4)}"  # the PostgreSQL database is shared by this module's tests
    assert store.run_sync(lambda tx: tx.get_setting(key)) is None

    async def race() -> list[str]:
        return list(await asyncio.gather(*(store.run(lambda tx, i=i: tx.setting_or_default(key, f"v{i}"))
                                           for i in range(8))))

    values = asyncio.run(race())
    assert len(set(values)) == 1 and values[0] in {f"v{i}" for i in range(8)}
    store.run_sync(lambda tx: tx.reset_all())
    assert store.run_sync(lambda tx: tx.get_setting(key)) == values[0]
    assert store.run_sync(lambda tx: tx.setting_or_default(key, "later")) == values[0]


def test_shared_rate_buckets_admit_the_burst_then_refuse(pg_store: Any) -> None:
    from localbox.stores.base import SharedRateTx

    pg_store.run_sync(lambda tx: tx.reset_all())
    assert isinstance(pg_store.run_sync(lambda tx: tx), SharedRateTx)
    takes = [pg_store.run_sync(lambda tx: tx.admit_rate("k", 2.0)) for _ in range(3)]
    assert takes[:2] == [None, None] and isinstance(takes[2], int) and takes[2] >= 1
    assert pg_store.run_sync(lambda tx: tx.admit_rate("other", 2.0)) is None  # keys are independent
