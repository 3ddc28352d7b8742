"""finish_batch_pg: 1000-entry finish_batch and finish_batch_v2 on PostgreSQL vs SQLite in the same round.

The benchmark makes its own database, ``localbox_bench_<random>``, on the PostgreSQL server at
LOCALBOX_BENCH_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres), migrates it, runs
``localbox serve`` on it (LOCALBOX_DATABASE_URL; blobs stay in the data dir), and drops it at the end.
A second server on an embedded SQLite data dir is the baseline: within each round both run the same
batches back to back (the side that goes first alternates), and the ratio PostgreSQL / SQLite is per round.
The timing is the one of ``finish_batch``: launch until ``/check`` answers complete (polled every 2 ms),
and the synchronous finish_batch_v2 call.

It also counts what one 1000-entry commit costs the database client, in this process: the same service
code (``commit_entries_tx`` in one store transaction) on the same database, with psycopg's cursor
``execute`` / ``executemany`` counted (psycopg has no counter of its own).  Outside an explicit pipeline
each ``execute`` is one round trip to the server; ``executemany`` runs in one implicit pipeline with one
Sync, so it is one round trip too, whatever the number of rows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.benchmarks.common import localbox_first, start_small_sessions
from bench.config import Config
from bench.payload import SmallBodies
from bench.procs import Localbox, localbox
from bench.stats import Recorder
from bench.wire import Connection, ConnectionPerThread, Dropbox, count_failures

ADMIN_URL = os.environ.get("LOCALBOX_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
N = 1000


def unavailable() -> str | None:
    """None when the PostgreSQL server can be used, else why not."""
    try:
        import psycopg
    except ImportError:
        return 'psycopg is not installed (pip install "localbox[postgres]")'
    try:
        psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5).close()
    except Exception as e:
        return f"no PostgreSQL at {ADMIN_URL}: {e}"
    return None


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database at the schema head on the admin URL's server, dropped afterwards."""
    import psycopg
    from localbox.stores.migrate import upgrade

    name = "localbox_bench_" + secrets.token_hex(6)
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rpartition("/")[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class StatementCounter:
    """Counts psycopg cursor calls made by one thread while active (class-level wrappers, removed on exit)."""

    def __init__(self) -> None:
        self.statements = 0
        self._thread = threading.get_ident()

    def __enter__(self) -> StatementCounter:
        import psycopg

        self._saved = (psycopg.Cursor.execute, psycopg.Cursor.executemany)
        execute, executemany = self._saved
        counter = self

        def counted_execute(cur: Any, *args: Any, **kw: Any) -> Any:
            if threading.get_ident() == counter._thread:
                counter.statements += 1
            return execute(cur, *args, **kw)

        def counted_executemany(cur: Any, *args: Any, **kw: Any) -> Any:
            if threading.get_ident() == counter._thread:
                counter.statements += 1
            return executemany(cur, *args, **kw)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import psycopg

        psycopg.Cursor.execute, psycopg.Cursor.executemany = self._saved  # type: ignore[method-assign]


def count_commit(url: str, email: str, round_id: int) -> tuple[int, float]:
    """(statements, ms) of one 1000-entry finish_batch commit transaction run in this process."""
    from localbox.domain.models import SessionType, UploadSession
    from localbox.services.accounts import Caller
    from localbox.services.files import CommitSpec
    from localbox.services.upload_sessions import FinishEntry, commit_entries_tx
    from localbox.stores.postgres import PostgresMetadataStore

    store = PostgresMetadataStore(url, pool_size=1)
    try:
        account = store.run_sync(lambda tx: tx.get_account_by_email(email))
        assert account is not None
        caller = Caller(account, frozenset({"files.content.write"}), account.root_namespace_id)
        now = time.time()
        tag = secrets.token_hex(4)
        sessions = [UploadSession(f"pid_upload_session:bench-{tag}-{i}", account.account_id,
                                  SessionType.SEQUENTIAL, 4096, True, now, now + 3600,
                                  [secrets.token_bytes(32)]) for i in range(N)]

        def insert(tx: Any) -> None:
            for s in sessions:
                tx.insert_session(s)

        store.run_sync(insert)
        folder = f"/bench/counted/r{round_id}-{tag}"
        entries = [FinishEntry(s.session_id, 4096, CommitSpec(f"{folder}/f{i:04d}.bin", "add"))
                   for i, s in enumerate(sessions)]
        with StatementCounter() as counter:
            start = time.perf_counter()
            outcomes = store.run_sync(lambda tx: commit_entries_tx(tx, caller, entries, True))
            ms = (time.perf_counter() - start) * 1000
        failed = [o for o in outcomes if isinstance(o, Exception)]
        if failed:
            raise RuntimeError(f"counted commit: {len(failed)} entries failed, first {failed[0]!r}")
        return counter.statements, ms
    finally:
        store._shutdown()


def _batches(lb: Localbox, pool: ThreadPoolExecutor, conns: ConnectionPerThread, bodies: SmallBodies,
             cfg: Config, tag: str, round_id: int) -> dict[str, float]:
    """ms of a 1000-entry finish_batch (launch to complete) and of a finish_batch_v2 on one server."""
    db = Dropbox(Connection(lb.server.port), lb.token)
    workers = cfg.concurrency[-1]
    out: dict[str, float] = {}
    for route in ("finish_batch", "finish_batch_v2"):
        seed = round_id * 10_000 + (5000 if route.endswith("v2") else 0) + (1 if tag == "pg" else 0)
        ids = start_small_sessions(pool, conns, lb.token, [bodies.body(seed, i) for i in range(N)], workers)
        entries = [(sid, cfg.small_size, f"/bench/{route}/r{round_id}/f{i:04d}.bin")
                   for i, sid in enumerate(ids)]
        start = time.perf_counter()
        results = db.finish_batch_wait(entries, cfg.poll_s).entries if route == "finish_batch" \
            else db.finish_batch_v2(entries)
        out[route] = (time.perf_counter() - start) * 1000
        failures = count_failures(results)
        if failures or len(results) != N:
            raise RuntimeError(f"{tag} {route} {N}: {failures} failed entries, {len(results)} results")
    db.conn.close()
    return out


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    why = unavailable()
    if why is not None:
        rec.note(f"skipped: {why}")
        print(f"  skipped: {why}", flush=True)
        return
    bodies = SmallBodies(cfg.small_size)
    workers = cfg.concurrency[-1]
    email = "bench@example.com"
    with (bench_database() as url,
          localbox(workdir / "pg", email, env={"LOCALBOX_DATABASE_URL": url}) as pg,
          localbox(workdir / "sqlite", email) as lite,
          ThreadPoolExecutor(workers) as pool):
        conns = {"pg": ConnectionPerThread(pg.server.port), "sqlite": ConnectionPerThread(lite.server.port)}
        servers = {"pg": pg, "sqlite": lite}
        for tag, lb in servers.items():  # warm-up: imports, pools, first statements
            warm = start_small_sessions(pool, conns[tag], lb.token, [bodies.body(99, i) for i in range(8)], 8)
            Dropbox(Connection(lb.server.port), lb.token).finish_batch_wait(
                [(sid, cfg.small_size, f"/bench/warm/{i}.bin") for i, sid in enumerate(warm)])
        for round_id in range(cfg.rounds):
            order = ["pg", "sqlite"] if localbox_first(round_id) else ["sqlite", "pg"]
            ms = {tag: _batches(servers[tag], pool, conns[tag], bodies, cfg, tag, round_id) for tag in order}
            for route in ("finish_batch", "finish_batch_v2"):
                name = f"{route} {N} x {cfg.small_size // 1024} KiB"
                rec.add(f"sqlite {name}", ms["sqlite"][route], "ms", False)
                rec.add(f"postgres {name}", ms["pg"][route], "ms", False)
                rec.ratio(f"postgres {name}", ms["pg"][route], ms["sqlite"][route], f"sqlite {name}")
            statements, commit_ms = count_commit(url, email, round_id)
            rec.add(f"statements per entry, {N}-entry commit (in process)", statements / N, "stmts", False)
            rec.add(f"{N}-entry commit transaction (in process)", commit_ms, "ms", False)
        for c in conns.values():
            c.close()
    rec.note(f"PostgreSQL: a fresh database on {ADMIN_URL.rpartition('/')[0]}/ per run, dropped at the end")
    rec.note("each round runs both servers back to back, first side alternating; ratio vs SQLite")
    rec.note(f"sessions uploaded by {workers} client threads before timing; /check polled every "
             f"{cfg.poll_s * 1000:g} ms")
