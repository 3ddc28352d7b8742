"""PostgresMetadataStore: the metadata backend for several localbox nodes on one PostgreSQL database.

How it works: psycopg 3 with a connection pool, transactions run on worker threads (the event loop
never waits on the network).  Write transactions run at READ COMMITTED and get the serial behaviour
the services expect from SQLite's single writer where it matters:
  - every namespace a write transaction touches is locked first (a transaction-scoped advisory lock,
    taken before the first read of that namespace), so commits into one namespace are serialized
    across all nodes, in lock arrival order, and each sees everything committed before it;
  - a session or job read inside a write transaction is locked (SELECT ... FOR UPDATE), so two
    nodes finishing the same session, or a node and the one taking its job over, cannot both commit;
  - compare-and-set updates (session offsets, leases, counters) are single UPDATE statements.
Deadlocks and serialization failures are retried (the whole function runs again: transaction
functions have no effects outside the transaction).  Reads run at REPEATABLE READ READ ONLY: one
consistent snapshot.  psycopg is imported only when this module is (pip install "localbox[postgres]").
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from localbox.domain.errors import StoreUnavailable
from localbox.domain.models import (
    Account,
    Entry,
    EntryKind,
    Job,
    JobState,
    Piece,
    SessionState,
    SessionType,
    Token,
    UploadSession,
)
from localbox.stores import bulk
from localbox.stores.base import WORD_BREAKS, NameFilter, SearchKey
from localbox.stores.postgres_teams import PgTeamTxMixin
from localbox.stores.schema_head import HEAD, SchemaOutdated, outdated_message, redact

T = TypeVar("T")
DIGEST = 32
_RETRIES = 20

ENTRY = ("namespace_id, path_lower, parent_lower, path_display, name, kind, id, seq, rev, size, content_hash, "
         "blocks, client_modified, server_modified")
SESSION = 'session_id, account_id, session_type, "offset", closed, created, expires, blocks, state'
JOB = "job_id, account_id, kind, state, created, request, result, completed, run_after"
REVISION = ("rev, namespace_id, path_lower, path_display, name, id, seq, size, content_hash, blocks, "
            "client_modified, server_modified")


def _pack(digests: Sequence[bytes]) -> bytes:
    return b"".join(digests)


def _unpack(blob: bytes | memoryview) -> list[bytes]:
    data = bytes(blob)
    return [data[i : i + DIGEST] for i in range(0, len(data), DIGEST)]


def _entry(row: Any) -> Entry | None:
    if row is None:
        return None
    return Entry(namespace_id=row[0], path_lower=row[1], path_display=row[3], name=row[4], kind=EntryKind(row[5]),
                 id=row[6], seq=row[7], rev=row[8], size=row[9], content_hash=row[10], blocks=_unpack(row[11]),
                 client_modified=row[12], server_modified=row[13])


def _revision(row: Any) -> Entry:
    return Entry(namespace_id=row[1], path_lower=row[2], path_display=row[3], name=row[4], kind=EntryKind.FILE,
                 id=row[5], seq=row[6], rev=row[0], size=row[7], content_hash=row[8], blocks=_unpack(row[9]),
                 client_modified=row[10], server_modified=row[11])


def _job(row: Any) -> Job | None:
    if row is None:
        return None
    return Job(row[0], row[1], row[2], JobState(row[3]), row[4], row[5], row[6], row[7], row[8])


def _session(row: Any) -> UploadSession | None:
    if row is None:
        return None
    return UploadSession(session_id=row[0], account_id=row[1], session_type=SessionType(row[2]), offset=row[3],
                         closed=bool(row[4]), created=row[5], expires=row[6], blocks=_unpack(row[7]),
                         state=SessionState(row[8]))


def _entry_row(e: Entry) -> tuple[Any, ...]:
    return (e.namespace_id, e.path_lower, e.parent_lower, e.path_display, e.name, e.kind.value, e.id, int(e.seq),
            e.rev, int(e.size), e.content_hash, _pack(e.blocks), float(e.client_modified), float(e.server_modified))


def _revision_row(e: Entry) -> tuple[Any, ...]:
    return (e.rev, e.namespace_id, e.path_lower, e.path_display, e.name, e.id, e.seq, e.size, e.content_hash,
            _pack(e.blocks), e.client_modified, e.server_modified)


_ENTRY_TYPES = ("text", "text", "text", "text", "text", "text", "text", "bigint", "text", "bigint", "text", "bytea",
                "float8", "float8")
# Rows arrive as one array per column (a single statement, however many rows); at most one row per path.
_PUT_ENTRIES = (f"INSERT INTO entries ({ENTRY}) SELECT * FROM unnest("
                + ", ".join(f"%s::{t}[]" for t in _ENTRY_TYPES) + ") "
                "ON CONFLICT (namespace_id, path_lower) DO UPDATE SET parent_lower=EXCLUDED.parent_lower, "
              "path_display=EXCLUDED.path_display, name=EXCLUDED.name, kind=EXCLUDED.kind, id=EXCLUDED.id, "
              "seq=EXCLUDED.seq, rev=EXCLUDED.rev, size=EXCLUDED.size, content_hash=EXCLUDED.content_hash, "
              "blocks=EXCLUDED.blocks, client_modified=EXCLUDED.client_modified, "
              "server_modified=EXCLUDED.server_modified")
_KEEP_REVISION = (f"INSERT INTO revisions ({REVISION}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                  "ON CONFLICT (rev) DO NOTHING")


def _token(row: Any) -> Token:
    return Token(row[0], row[1], frozenset(row[2].split()), row[3], row[4])


class _Tx(PgTeamTxMixin):
    def __init__(self, conn: psycopg.Connection[Any], write: bool) -> None:
        self.conn = conn
        self.write = write
        self._locked: set[str] = set()

    def _x(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(sql, args)

    def _one(self, sql: str, *args: Any) -> Any:
        return self._x(sql, args).fetchone()

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows: psycopg's executemany sends them in one pipeline, one round trip."""
        if len(rows) == 1:
            self._x(sql, rows[0])
        elif rows:
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)

    def _ns(self, namespace_id: str | None) -> None:
        """Serialize write transactions per namespace: lock before the first read of it."""
        if self.write and namespace_id is not None and namespace_id not in self._locked:
            self._x("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (namespace_id,))
            self._locked.add(namespace_id)

    def lock_namespaces(self, namespace_ids: Sequence[str], wait: float | None) -> frozenset[str]:
        """The advisory locks of `_ns`, taken up front and within a bound: one round trip takes every
        free one without waiting; each busy one is then waited for under lock_timeout (in a savepoint,
        so that a timeout leaves the transaction usable) until the time is up."""
        wanted = sorted(set(namespace_ids) - self._locked)
        if not wanted or not self.write:
            return frozenset()
        if wait is None:
            for ns in wanted:
                self._ns(ns)
            return frozenset()
        deadline = time.monotonic() + wait
        rows = self._x("SELECT ns FROM unnest(%s::text[]) WITH ORDINALITY AS t(ns, i) "
                       "WHERE NOT pg_try_advisory_xact_lock(hashtextextended(ns, 0)) ORDER BY i", (wanted,)).fetchall()
        waiting = [str(r[0]) for r in rows]
        self._locked.update(set(wanted) - set(waiting))
        busy: set[str] = set()
        for ns in waiting:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                busy.add(ns)
                continue
            self._x("SAVEPOINT localbox_ns_lock")
            try:
                self._x("SELECT set_config('lock_timeout', %s, true)", (f"{left_ms}ms",))
                self._x("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (ns,))
                self._x("RELEASE SAVEPOINT localbox_ns_lock")
                self._locked.add(ns)
            except pg_errors.LockNotAvailable:
                self._x("ROLLBACK TO SAVEPOINT localbox_ns_lock")
                busy.add(ns)
        if waiting:
            self._x("SELECT set_config('lock_timeout', '0', true)")
        return frozenset(busy)

    @property
    def _for_update(self) -> str:
        return " FOR UPDATE" if self.write else ""

    # -- accounts and tokens
    def insert_account(self, a: Account) -> None:
        self._x("INSERT INTO accounts VALUES (%s,%s,%s,%s,%s,%s,%s)",
                (a.account_id, a.email, a.given_name, a.surname, a.root_namespace_id, a.created, a.quota))

    _ACCOUNT = "SELECT account_id, email, given_name, surname, root_namespace_id, created, quota FROM accounts"

    def get_account(self, account_id: str) -> Account | None:
        row = self._one(f"{self._ACCOUNT} WHERE account_id=%s", account_id)
        return None if row is None else Account(*row)

    def get_account_by_email(self, email: str) -> Account | None:
        row = self._one(f"{self._ACCOUNT} WHERE lower(email)=lower(%s)", email)
        return None if row is None else Account(*row)

    _TOKEN = "SELECT token_hash, account_id, scopes, created, prefix FROM tokens"

    def insert_token(self, t: Token) -> None:
        self._x("INSERT INTO tokens (token_hash, account_id, scopes, created, prefix) VALUES (%s,%s,%s,%s,%s)",
                (t.token_hash, t.account_id, " ".join(sorted(t.scopes)), t.created, t.prefix))

    def get_token(self, token_hash: str) -> Token | None:
        row = self._one(f"{self._TOKEN} WHERE token_hash=%s", token_hash)
        return None if row is None else _token(row)

    def list_tokens(self, account_id: str) -> list[Token]:
        rows = self._x(f"{self._TOKEN} WHERE account_id=%s ORDER BY created, token_hash", (account_id,)).fetchall()
        return [_token(r) for r in rows]

    def delete_token(self, token_hash: str) -> bool:
        return self._x("DELETE FROM tokens WHERE token_hash=%s", (token_hash,)).rowcount == 1

    def insert_namespace(self, namespace_id: str, owner_account_id: str) -> None:
        self._x("INSERT INTO namespaces (namespace_id, owner_account_id, seq, bytes_used) VALUES (%s,%s,0,0)",
                (namespace_id, owner_account_id))

    def namespace_owner(self, namespace_id: str) -> str | None:
        row = self._one("SELECT owner_account_id FROM namespaces WHERE namespace_id=%s", namespace_id)
        return None if row is None else str(row[0])

    def next_seq(self, namespace_id: str) -> int:
        self._ns(namespace_id)
        row = self._one("UPDATE namespaces SET seq = seq + 1 WHERE namespace_id=%s RETURNING seq", namespace_id)
        return int(row[0])

    def advance_seq(self, namespace_id: str, count: int) -> int:
        self._ns(namespace_id)
        row = self._one("UPDATE namespaces SET seq = seq + %s WHERE namespace_id=%s RETURNING seq",
                        count, namespace_id)
        return int(row[0])

    def bytes_used(self, account_id: str) -> int:
        row = self._one("SELECT COALESCE(SUM(bytes_used), 0) FROM namespaces WHERE owner_account_id=%s", account_id)
        return int(row[0])

    def current_seq(self, namespace_id: str) -> int:
        self._ns(namespace_id)
        row = self._one("SELECT seq FROM namespaces WHERE namespace_id=%s", namespace_id)
        return 0 if row is None else int(row[0])

    # -- sessions
    def insert_session(self, s: UploadSession) -> None:
        self._x(f"INSERT INTO sessions ({SESSION}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (s.session_id, s.account_id, s.session_type.value, s.offset, int(s.closed), s.created, s.expires,
                 _pack(s.blocks), s.state.value))

    def get_session(self, session_id: str) -> UploadSession | None:
        return _session(self._one(f"SELECT {SESSION} FROM sessions WHERE session_id=%s{self._for_update}",
                                  session_id))

    def get_sessions(self, session_ids: Collection[str]) -> dict[str, UploadSession]:
        # In id order, so that two transactions locking overlapping sets cannot deadlock each other.
        rows = self._x(f"SELECT {SESSION} FROM sessions WHERE session_id = ANY(%s) ORDER BY session_id"
                       f"{self._for_update}", (list(session_ids),)).fetchall()
        return {s.session_id: s for s in map(_session, rows) if s is not None}

    def update_session(self, s: UploadSession, expected_offset: int) -> bool:
        cur = self._x('UPDATE sessions SET "offset"=%s, closed=%s, blocks=%s, state=%s '
                      'WHERE session_id=%s AND "offset"=%s',
                      (s.offset, int(s.closed), _pack(s.blocks), s.state.value, s.session_id, expected_offset))
        return cur.rowcount == 1

    def delete_expired_sessions(self, now: float, limit: int) -> list[str]:
        ids = [r[0] for r in self._x("SELECT session_id FROM sessions WHERE expires < %s ORDER BY expires LIMIT %s "
                                     "FOR UPDATE SKIP LOCKED", (now, limit)).fetchall()]
        if ids:
            self._x("DELETE FROM pieces WHERE session_id = ANY(%s)", (ids,))
            self._x("DELETE FROM sessions WHERE session_id = ANY(%s)", (ids,))
        return ids

    def mark_session(self, session_id: str, state: SessionState) -> None:
        self._x("UPDATE sessions SET state=%s, closed=1 WHERE session_id=%s", (state.value, session_id))

    def mark_sessions(self, session_ids: Collection[str], state: SessionState) -> None:
        self._x("UPDATE sessions SET state=%s, closed=1 WHERE session_id = ANY(%s)", (state.value, list(session_ids)))

    def insert_piece(self, session_id: str, p: Piece) -> None:
        self._x('INSERT INTO pieces (session_id, "offset", length, blocks) VALUES (%s,%s,%s,%s) '
                'ON CONFLICT (session_id, "offset") DO UPDATE SET length=EXCLUDED.length, blocks=EXCLUDED.blocks',
                (session_id, p.offset, p.length, _pack(p.blocks)))

    def list_pieces(self, session_id: str) -> list[Piece]:
        rows = self._x('SELECT "offset", length, blocks FROM pieces WHERE session_id=%s ORDER BY "offset"',
                       (session_id,)).fetchall()
        return [Piece(r[0], r[1], tuple(_unpack(r[2]))) for r in rows]

    def set_session_expiry(self, session_id: str, expires: float) -> None:
        self._x("UPDATE sessions SET expires=%s WHERE session_id=%s", (expires, session_id))

    # -- entries
    def get_entry(self, namespace_id: str, path_lower: str) -> Entry | None:
        self._ns(namespace_id)
        return _entry(self._one(f"SELECT {ENTRY} FROM entries WHERE namespace_id=%s AND path_lower=%s",
                                namespace_id, path_lower))

    def get_entries(self, namespace_id: str, path_lowers: Collection[str]) -> dict[str, Entry]:
        self._ns(namespace_id)
        rows = self._x(f"SELECT {ENTRY} FROM entries WHERE namespace_id=%s AND path_lower = ANY(%s)",
                       (namespace_id, list(path_lowers))).fetchall()
        return {e.path_lower: e for e in map(_entry, rows) if e is not None}

    def get_entry_by_id(self, file_id: str) -> Entry | None:
        sql = f"SELECT {ENTRY} FROM entries WHERE id=%s AND kind != 'deleted'"
        found = _entry(self._one(sql, file_id))
        if found is not None and self.write and found.namespace_id not in self._locked:
            self._ns(found.namespace_id)  # then read again, under the namespace's lock
            found = _entry(self._one(sql, file_id))
        return found

    def get_entry_by_rev(self, rev: str) -> Entry | None:
        current = _entry(self._one(f"SELECT {ENTRY} FROM entries WHERE rev=%s AND kind='file'", rev))
        if current is not None:
            return current
        row = self._one(f"SELECT {REVISION} FROM revisions WHERE rev=%s", rev)
        return None if row is None else _revision(row)

    def list_revisions(
        self, *, namespace_id: str | None = None, path_lower: str | None = None, file_id: str | None = None,
        before_seq: int | None = None, limit: int,
    ) -> list[Entry]:
        args: list[Any]
        if file_id is not None:
            where, args = "id=%s", [file_id]
        else:
            where, args = "namespace_id=%s AND path_lower=%s", [namespace_id, path_lower]
        if before_seq is not None:
            where += " AND seq < %s"
            args.append(before_seq)
        rows = self._x(f"SELECT {REVISION} FROM revisions WHERE {where} "
                       "ORDER BY server_modified DESC, seq DESC LIMIT %s", (*args, limit)).fetchall()
        return [_revision(r) for r in rows]

    def keep_revision(self, e: Entry) -> None:
        self._x(_KEEP_REVISION, _revision_row(e))

    def keep_revisions(self, entries: Sequence[Entry]) -> None:
        self._many(_KEEP_REVISION, [_revision_row(e) for e in entries])

    def put_entry(self, e: Entry) -> None:
        self.put_entries([e])

    def put_entries(self, entries: Sequence[Entry]) -> None:
        latest = bulk.last_per_path(entries)
        old: dict[bulk.Key, int] = {}
        for ns, path_lowers in sorted(bulk.by_namespace(latest).items()):
            self._ns(ns)
            rows = self._x("SELECT path_lower, size FROM entries WHERE namespace_id=%s AND path_lower = ANY(%s) "
                           "AND kind='file'", (ns, path_lowers)).fetchall()
            old.update(((ns, r[0]), r[1]) for r in rows)
        growth = bulk.byte_growth(latest, old)
        self._many("UPDATE namespaces SET bytes_used = bytes_used + %s WHERE namespace_id=%s",
                   [(delta, ns) for ns, delta in growth.items()])
        if latest:
            self._x(_PUT_ENTRIES, [list(column) for column in zip(*map(_entry_row, latest.values()), strict=True)])

    def list_entries(
        self, namespace_id: str, parent_lower: str, *, recursive: bool, after: str, limit: int,
        max_seq: int | None = None, min_seq: int | None = None, live_only: bool = False,
    ) -> list[Entry]:
        self._ns(namespace_id)
        if recursive:  # everything below "/a" sorts in ["/a/", "/a0") under the "C" collation
            where = "namespace_id=%s AND path_lower >= %s AND path_lower < %s"
            args: list[Any] = [namespace_id, parent_lower + "/", parent_lower + "0"]
        else:
            where = "namespace_id=%s AND parent_lower=%s"
            args = [namespace_id, parent_lower]
        where += " AND path_lower > %s"
        args.append(after)
        if max_seq is not None:
            where += " AND seq <= %s"
            args.append(max_seq)
        if min_seq is not None:
            where += " AND seq > %s"
            args.append(min_seq)
        if live_only:
            where += " AND kind != 'deleted'"
        rows = self._x(f"SELECT {ENTRY} FROM entries WHERE {where} ORDER BY path_lower LIMIT %s",
                       (*args, limit)).fetchall()
        return [e for e in map(_entry, rows) if e is not None]

    def list_changes(
        self, namespace_id: str, parent_lower: str, *, recursive: bool, since: int, upto: int, limit: int,
    ) -> list[Entry]:
        self._ns(namespace_id)
        where = "namespace_id=%s AND seq > %s AND seq <= %s"
        args: list[Any] = [namespace_id, since, upto]
        if not recursive:
            where += " AND parent_lower=%s"
            args.append(parent_lower)
        elif parent_lower:
            where += " AND path_lower >= %s AND path_lower < %s"
            args += [parent_lower + "/", parent_lower + "0"]
        rows = self._x(f"SELECT {ENTRY} FROM entries WHERE {where} ORDER BY seq LIMIT %s", (*args, limit)).fetchall()
        return [e for e in map(_entry, rows) if e is not None]

    # -- garbage collection
    def referenced_blocks(self) -> set[bytes]:
        out: set[bytes] = set()
        for sql in ("SELECT blocks FROM entries WHERE kind='file'", "SELECT blocks FROM revisions",
                    "SELECT blocks FROM sessions WHERE state='open'",
                    "SELECT p.blocks FROM pieces p JOIN sessions s USING (session_id) WHERE s.state='open'"):
            for (packed,) in self._x(sql):
                out.update(_unpack(packed))
        return out

    def open_session_ids(self) -> set[str]:
        return {r[0] for r in self._x("SELECT session_id FROM sessions WHERE state='open'")}

    def expire_revisions(self, superseded_before: float) -> int:
        cur = self._x(
            "DELETE FROM revisions r WHERE EXISTS (SELECT 1 FROM revisions n WHERE n.id = r.id "
            "AND n.seq > r.seq AND n.server_modified < %s) OR EXISTS (SELECT 1 FROM entries e "
            "WHERE e.id = r.id AND e.seq > r.seq AND e.server_modified < %s)", (superseded_before, superseded_before))
        return cur.rowcount

    # -- jobs
    def insert_job(self, j: Job) -> None:
        self._x(f"INSERT INTO jobs ({JOB}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (j.job_id, j.account_id, j.kind, j.state.value, j.created, j.request, j.result, j.completed,
                 j.run_after))

    def get_job(self, job_id: str) -> Job | None:
        return _job(self._one(f"SELECT {JOB} FROM jobs WHERE job_id=%s", job_id))

    def complete_job(self, job_id: str, result: str, completed: float) -> None:
        self._x("UPDATE jobs SET state=%s, result=%s, completed=%s WHERE job_id=%s",
                (JobState.COMPLETE.value, result, completed, job_id))

    def fail_job(self, job_id: str, completed: float) -> None:
        self._x("UPDATE jobs SET state=%s, completed=%s WHERE job_id=%s AND state=%s",
                (JobState.FAILED.value, completed, job_id, JobState.PENDING.value))

    def pending_jobs(self) -> list[Job]:
        rows = self._x(f"SELECT {JOB} FROM jobs WHERE state=%s ORDER BY created, job_id",
                       (JobState.PENDING.value,)).fetchall()
        return [j for j in map(_job, rows) if j is not None]

    def delete_jobs_before(self, completed_before: float) -> int:
        return self._x("DELETE FROM jobs WHERE state != %s AND completed < %s",
                       (JobState.PENDING.value, completed_before)).rowcount

    # -- leases (see stores/base.py)
    def lock_session(self, session_id: str, owner: str, now: float, until: float) -> bool:
        cur = self._x("UPDATE sessions SET lock_owner=%s, lock_until=%s WHERE session_id=%s "
                      "AND (lock_owner IS NULL OR lock_owner=%s OR lock_until < %s)",
                      (owner, until, session_id, owner, now))
        return cur.rowcount == 1

    def unlock_session(self, session_id: str, owner: str) -> None:
        self._x("UPDATE sessions SET lock_owner=NULL, lock_until=NULL WHERE session_id=%s AND lock_owner=%s",
                (session_id, owner))

    def claim_job(self, owner: str, now: float, until: float) -> Job | None:
        # SKIP LOCKED: nodes claiming at once take different jobs; the outer WHERE is re-checked on
        # the newest row version, so a job another node claimed meanwhile is not taken twice.
        return _job(self._claim(owner, now, until))

    def _claim(self, owner: str, now: float, until: float) -> Any:
        return self._x(
            f"UPDATE jobs SET owner=%(owner)s, lease_until=%(until)s WHERE job_id = ("
            f"SELECT job_id FROM jobs j WHERE state = 'pending' AND (run_after IS NULL OR run_after <= %(now)s) "
            f"AND (owner IS NULL OR lease_until < %(now)s) AND NOT EXISTS (SELECT 1 FROM jobs k "
            f"WHERE k.account_id = j.account_id AND k.state = 'pending' "
            f"AND (k.run_after IS NULL OR k.run_after <= %(now)s) "
            f"AND (k.created < j.created OR (k.created = j.created AND k.job_id < j.job_id))) "
            f"ORDER BY created, job_id LIMIT 1 FOR UPDATE SKIP LOCKED) "
            f"AND state = 'pending' AND (owner IS NULL OR lease_until < %(now)s) RETURNING {JOB}",
            {"owner": owner, "until": until, "now": now}).fetchone()

    def renew_job(self, job_id: str, owner: str, until: float) -> bool:
        return self._x("UPDATE jobs SET lease_until=%s WHERE job_id=%s AND owner=%s AND state='pending'",
                       (until, job_id, owner)).rowcount == 1

    def hold_job(self, job_id: str, owner: str) -> bool:
        row = self._one("SELECT owner, state FROM jobs WHERE job_id=%s FOR UPDATE", job_id)
        return row is not None and row[0] == owner and row[1] == JobState.PENDING.value

    def release_job(self, job_id: str, owner: str, run_after: float | None) -> None:
        self._x("UPDATE jobs SET owner=NULL, lease_until=NULL, run_after=%s WHERE job_id=%s AND owner=%s",
                (run_after, job_id, owner))

    def release_leases(self) -> int:
        return self._x("UPDATE jobs SET owner=NULL, lease_until=NULL WHERE owner IS NOT NULL").rowcount

    def count_open_sessions(self, account_id: str, now: float) -> int:
        return int(self._one("SELECT COUNT(*) FROM sessions WHERE account_id=%s AND state='open' AND expires > %s",
                             account_id, now)[0])

    def count_pending_jobs(self, account_id: str) -> int:
        return int(self._one("SELECT COUNT(*) FROM jobs WHERE state=%s AND account_id=%s",
                             JobState.PENDING.value, account_id)[0])

    def pending_before(self, account_id: str, created: float, now: float) -> bool:
        row = self._one("SELECT 1 FROM jobs WHERE account_id=%s AND state='pending' "
                        "AND (run_after IS NULL OR run_after <= %s) AND created <= %s LIMIT 1",
                        account_id, now, created)
        return row is not None

    # -- change feeds and search
    def namespace_seqs(self, namespace_ids: Sequence[str]) -> dict[str, int]:
        rows = self._x("SELECT namespace_id, seq FROM namespaces WHERE namespace_id = ANY(%s)",
                       (list(namespace_ids),)).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def search_entries(
        self, namespace_id: str, under_lower: str, terms: Sequence[str], kinds: Sequence[NameFilter], *,
        by_relevance: bool, after: SearchKey | None, limit: int,
    ) -> list[tuple[Entry, SearchKey]]:
        name = "substr(path_lower, length(parent_lower) + 2)"  # the lower-cased last component
        key_args: list[Any] = []
        if by_relevance:
            starts = []
            for t in terms:
                alternatives = [f"strpos({name}, %s) = 1"] + [f"strpos({name}, %s) > 0"] * len(WORD_BREAKS)
                starts.append(f"(CASE WHEN {' OR '.join(alternatives)} THEN 1 ELSE 0 END)")
                key_args += [t, *(b + t for b in WORD_BREAKS)]
            keys = f"-({' + '.join(starts) or '0'})::float8 AS k1, length({name}) AS k2"
        else:
            keys = "-server_modified AS k1, 0 AS k2"
        where = ["namespace_id = %s", "path_lower >= %s", "path_lower < %s"]
        args: list[Any] = [namespace_id, under_lower + "/", under_lower + "0"]
        for t in terms:
            where.append(f"strpos({name}, %s) > 0")
            args.append(t)
        alternatives = []
        for f in kinds:
            cond = "kind = %s"
            args.append(f.kind)
            for suffixes, negate in ((f.suffixes, False), (f.exclude, True)):
                if suffixes is None or (negate and not suffixes):
                    continue
                ends = [f"(right(path_lower, %s) = %s AND length({name}) > %s)" for _ in suffixes] or ["false"]
                cond += f" AND {'NOT ' if negate else ''}({' OR '.join(ends)})"
                for suffix in suffixes:
                    args += [len(suffix), suffix, len(suffix)]
            alternatives.append(f"({cond})")
        where.append(f"({' OR '.join(alternatives) or 'false'})")
        sql = f"SELECT * FROM (SELECT {ENTRY}, {keys} FROM entries WHERE {' AND '.join(where)}) found"
        if after is not None:
            sql += " WHERE (k1, k2, path_lower) > (%s::float8, %s::int, %s)"
            args += list(after)
        sql += " ORDER BY k1, k2, path_lower LIMIT %s"
        rows = self._x(sql, (*key_args, *args, limit)).fetchall()
        out: list[tuple[Entry, SearchKey]] = []
        for row in rows:
            entry = _entry(row)
            assert entry is not None
            out.append((entry, (float(row[-2]), int(row[-1]), entry.path_lower)))
        return out

    # -- per-database settings
    def get_setting(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key=%s", key)
        return None if row is None else str(row[0])

    def setting_or_default(self, key: str, default: str) -> str:
        # READ COMMITTED: a concurrent insert of the same key makes this one wait for it and do nothing;
        # the SELECT that follows then sees the winner's value.
        self._x("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, default))
        value = self.get_setting(key)
        assert value is not None
        return value

    # -- reset (the admin API of test servers)
    def _tables(self) -> list[str]:
        rows = self._x("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                       "AND tablename NOT IN ('meta', 'alembic_version')").fetchall()
        return [str(r[0]) for r in rows]

    def reset_all(self) -> None:
        tables = self._tables()
        if tables:
            self._x("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))

    def reset_account(self, account_id: str) -> list[str]:
        namespaces = [r[0] for r in self._x("SELECT namespace_id FROM namespaces WHERE owner_account_id=%s",
                                            (account_id,)).fetchall()]
        sessions = [r[0] for r in self._x("SELECT session_id FROM sessions WHERE account_id=%s",
                                          (account_id,)).fetchall()]
        self._x("DELETE FROM pieces WHERE session_id = ANY(%s)", (sessions,))
        columns: dict[str, set[str]] = {}
        for table, column in self._x("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_schema = current_schema()").fetchall():
            columns.setdefault(str(table), set()).add(str(column))
        # Rows referring to the account go before the account itself (tokens -> accounts).
        for table in sorted(self._tables(), key=lambda t: t == "accounts"):
            for column in ("account_id", "owner_account_id"):
                if column in columns.get(table, ()):
                    self._x(f'DELETE FROM "{table}" WHERE {column}=%s', (account_id,))
            if "namespace_id" in columns.get(table, ()):
                self._x(f'DELETE FROM "{table}" WHERE namespace_id = ANY(%s)', (namespaces,))
        return sessions


_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.LockNotAvailable)


class PostgresMetadataStore:
    """A MetadataStore on PostgreSQL (see the module docstring).  `url`: postgresql://user@host/db."""

    def __init__(self, url: str, *, pool_size: int = 8, check_schema: bool = True) -> None:
        self.url = url
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"autocommit": True},
                                    open=False, name="localbox")
        try:
            self._pool.open(wait=True, timeout=30)
        except Exception as e:
            self._pool.close()
            raise StoreUnavailable(f"cannot connect to {redact(url)}: {e}") from e
        self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="pg")
        if check_schema:
            try:
                current = self.schema_revision()
                if current != HEAD:
                    raise SchemaOutdated(outdated_message(current, redact(url)))
            except BaseException:
                self._shutdown()
                raise

    def schema_revision(self) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
            if row is None or not row[0]:
                return None
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return None if version is None else str(version[0])

    def _transact(self, fn: Callable[[Any], T], write: bool) -> T:
        for attempt in range(_RETRIES):
            try:
                with self._pool.connection() as conn:
                    conn.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    try:
                        result = fn(_Tx(conn, write))
                        conn.execute("COMMIT")
                        return result
                    except BaseException:
                        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                            conn.execute("ROLLBACK")
                        raise
            except _RETRYABLE:
                # Another transaction won a lock race: run the whole function again, a little later.
                time.sleep(min(0.002 * 2**attempt, 0.25) * (0.5 + random.random()))
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                raise StoreUnavailable(f"metadata store: {e}") from e
        raise StoreUnavailable("metadata store: too much contention, try again")

    async def run(self, fn: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._transact, fn, True)

    async def read(self, fn: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._transact, fn, False)

    def run_sync(self, fn: Callable[[Any], T]) -> T:
        return self._transact(fn, True)

    def _shutdown(self) -> None:
        self._threads.shutdown(wait=True)
        self._pool.close()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)
