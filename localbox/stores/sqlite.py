"""SqliteMetadataStore: the embedded metadata backend.

How it works: one SQLite database in WAL mode with `synchronous=FULL`, so a committed transaction
survives a crash or power loss.  Write transactions run on one dedicated writer thread, which keeps
the event loop free during fsync and serializes writers without busy errors; writes that queue up
meanwhile are group-committed (one savepoint each, one fsync for all).  Reads run on their own
threads against WAL snapshots.  Other processes (the admin CLI) share the file through SQLite's
own locking.  Cost: one fsync per group; a 1000-row transaction is a few milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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
from localbox.stores import bulk, migrate
from localbox.stores.base import WORD_BREAKS, NameFilter, SearchKey
from localbox.stores.schema_head import SchemaOutdated, outdated_message
from localbox.stores.sqlite_inspect import InspectTxMixin
from localbox.stores.sqlite_leases import LeaseTxMixin
from localbox.stores.sqlite_teams import TEAM_SCHEMA, TeamTxMixin

T = TypeVar("T")
SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE COLLATE NOCASE, given_name TEXT NOT NULL,
    surname TEXT NOT NULL, root_namespace_id TEXT NOT NULL, created REAL NOT NULL, quota INTEGER);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(account_id), scopes TEXT NOT NULL,
    created REAL NOT NULL DEFAULT 0, prefix TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS tokens_account ON tokens (account_id);
CREATE TABLE IF NOT EXISTS namespaces (
    namespace_id TEXT PRIMARY KEY, owner_account_id TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, session_type TEXT NOT NULL,
    offset INTEGER NOT NULL, closed INTEGER NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
    blocks BLOB NOT NULL, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE INDEX IF NOT EXISTS namespaces_owner ON namespaces (owner_account_id);
CREATE TABLE IF NOT EXISTS pieces (
    session_id TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, blocks BLOB NOT NULL,
    PRIMARY KEY (session_id, offset));
CREATE TABLE IF NOT EXISTS entries (
    namespace_id TEXT NOT NULL, path_lower TEXT NOT NULL, parent_lower TEXT NOT NULL,
    path_display TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    rev TEXT NOT NULL, size INTEGER NOT NULL, content_hash TEXT NOT NULL, blocks BLOB NOT NULL,
    client_modified REAL NOT NULL, server_modified REAL NOT NULL,
    PRIMARY KEY (namespace_id, path_lower));
CREATE INDEX IF NOT EXISTS entries_parent ON entries (namespace_id, parent_lower, path_lower);
CREATE INDEX IF NOT EXISTS entries_id ON entries (id);
CREATE INDEX IF NOT EXISTS entries_seq ON entries (namespace_id, seq);
CREATE INDEX IF NOT EXISTS entries_rev ON entries (rev) WHERE rev != '';
CREATE TABLE IF NOT EXISTS revisions (
    rev TEXT PRIMARY KEY, namespace_id TEXT NOT NULL, path_lower TEXT NOT NULL, path_display TEXT NOT NULL,
    name TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, size INTEGER NOT NULL, content_hash TEXT NOT NULL,
    blocks BLOB NOT NULL, client_modified REAL NOT NULL, server_modified REAL NOT NULL);
CREATE INDEX IF NOT EXISTS revisions_id ON revisions (id);
CREATE INDEX IF NOT EXISTS revisions_path ON revisions (namespace_id, path_lower);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
    created REAL NOT NULL, request TEXT NOT NULL, result TEXT, completed REAL);
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (state, created);
"""

# Columns added after version 1, with how to fill them in an existing database.
_UPGRADES_TO_2 = (
    "ALTER TABLE accounts ADD COLUMN quota INTEGER",
    "ALTER TABLE namespaces ADD COLUMN bytes_used INTEGER NOT NULL DEFAULT 0",
    "UPDATE namespaces SET bytes_used = (SELECT COALESCE(SUM(size), 0) FROM entries e "
    "WHERE e.namespace_id = namespaces.namespace_id AND e.kind = 'file')",
)


def _upgrade_tokens_to_3(db: sqlite3.Connection) -> None:
    """Version 3 stores tokens only as SHA-256 hashes: hash the secrets an older database holds."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(tokens)")}
    if "token" not in columns:
        return
    db.execute("ALTER TABLE tokens RENAME COLUMN token TO token_hash")
    db.execute("ALTER TABLE tokens ADD COLUMN created REAL NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT ''")
    rows = db.execute("SELECT token_hash FROM tokens").fetchall()
    db.executemany("UPDATE tokens SET token_hash=?, prefix=? WHERE token_hash=?",
                   [(hashlib.sha256(r[0].encode()).hexdigest(), r[0][:9], r[0]) for r in rows])


DIGEST = 32


def _pack(digests: list[bytes] | tuple[bytes, ...]) -> bytes:
    return b"".join(digests)


def _unpack(blob: bytes) -> list[bytes]:
    return [blob[i : i + DIGEST] for i in range(0, len(blob), DIGEST)]


class _Tx(TeamTxMixin, LeaseTxMixin, InspectTxMixin):
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _one(self, sql: str, *args: Any) -> Any:
        return self.db.execute(sql, args).fetchone()

    # -- accounts and tokens
    def insert_account(self, a: Account) -> None:
        self.db.execute(
            "INSERT INTO accounts VALUES (?,?,?,?,?,?,?)",
            (a.account_id, a.email, a.given_name, a.surname, a.root_namespace_id, a.created, a.quota),
        )

    @staticmethod
    def _account(row: Any) -> Account | None:
        return None if row is None else Account(*row)

    def get_account(self, account_id: str) -> Account | None:
        return self._account(self._one("SELECT * FROM accounts WHERE account_id=?", account_id))

    def get_account_by_email(self, email: str) -> Account | None:
        return self._account(self._one("SELECT * FROM accounts WHERE email=?", email))

    def insert_token(self, t: Token) -> None:
        self.db.execute("INSERT INTO tokens (token_hash, account_id, scopes, created, prefix) VALUES (?,?,?,?,?)",
                        (t.token_hash, t.account_id, " ".join(sorted(t.scopes)), t.created, t.prefix))

    _TOKEN = "SELECT token_hash, account_id, scopes, created, prefix FROM tokens"

    def get_token(self, token_hash: str) -> Token | None:
        row = self._one(f"{self._TOKEN} WHERE token_hash=?", token_hash)
        return None if row is None else Token(row[0], row[1], frozenset(row[2].split()), row[3], row[4])

    def list_tokens(self, account_id: str) -> list[Token]:
        rows = self.db.execute(f"{self._TOKEN} WHERE account_id=? ORDER BY created, token_hash", (account_id,))
        return [Token(r[0], r[1], frozenset(r[2].split()), r[3], r[4]) for r in rows.fetchall()]

    def delete_token(self, token_hash: str) -> bool:
        return self.db.execute("DELETE FROM tokens WHERE token_hash=?", (token_hash,)).rowcount == 1

    def insert_namespace(self, namespace_id: str, owner_account_id: str) -> None:
        self.db.execute("INSERT INTO namespaces VALUES (?,?,0,0)", (namespace_id, owner_account_id))

    def namespace_owner(self, namespace_id: str) -> str | None:
        row = self._one("SELECT owner_account_id FROM namespaces WHERE namespace_id=?", namespace_id)
        return None if row is None else str(row[0])

    def next_seq(self, namespace_id: str) -> int:
        row = self._one("UPDATE namespaces SET seq = seq + 1 WHERE namespace_id=? RETURNING seq", namespace_id)
        return int(row[0])

    def advance_seq(self, namespace_id: str, count: int) -> int:
        row = self._one("UPDATE namespaces SET seq = seq + ? WHERE namespace_id=? RETURNING seq", count, namespace_id)
        return int(row[0])

    def bytes_used(self, account_id: str) -> int:
        # A counter kept by put_entry: summing the entries would cost a scan per commit.
        row = self._one("SELECT COALESCE(SUM(bytes_used), 0) FROM namespaces WHERE owner_account_id=?", account_id)
        return int(row[0])

    def current_seq(self, namespace_id: str) -> int:
        row = self._one("SELECT seq FROM namespaces WHERE namespace_id=?", namespace_id)
        return 0 if row is None else int(row[0])

    # -- sessions
    def insert_session(self, s: UploadSession) -> None:
        self.db.execute(
            "INSERT INTO sessions (session_id, account_id, session_type, offset, closed, created, expires, blocks, "
            "state) VALUES (?,?,?,?,?,?,?,?,?)",
            (s.session_id, s.account_id, s.session_type.value, s.offset, int(s.closed), s.created,
             s.expires, _pack(s.blocks), s.state.value),
        )

    @staticmethod
    def _session(row: Any) -> UploadSession:
        return UploadSession(
            session_id=row[0], account_id=row[1], session_type=SessionType(row[2]), offset=row[3],
            closed=bool(row[4]), created=row[5], expires=row[6], blocks=_unpack(row[7]),
            state=SessionState(row[8]),
        )

    _SESSION = ("SELECT session_id, account_id, session_type, offset, closed, created, expires, blocks, state "
                "FROM sessions")

    def get_session(self, session_id: str) -> UploadSession | None:
        row = self._one(f"{self._SESSION} WHERE session_id=?", session_id)
        return None if row is None else self._session(row)

    def get_sessions(self, session_ids: Collection[str]) -> dict[str, UploadSession]:
        out: dict[str, UploadSession] = {}
        for chunk in bulk.chunks(list(session_ids)):
            rows = self.db.execute(f"{self._SESSION} WHERE session_id IN ({','.join('?' * len(chunk))})", chunk)
            out.update((s.session_id, s) for s in map(self._session, rows.fetchall()))
        return out

    def update_session(self, s: UploadSession, expected_offset: int) -> bool:
        cur = self.db.execute(
            "UPDATE sessions SET offset=?, closed=?, blocks=?, state=? WHERE session_id=? AND offset=?",
            (s.offset, int(s.closed), _pack(s.blocks), s.state.value, s.session_id, expected_offset),
        )
        return cur.rowcount == 1

    def delete_expired_sessions(self, now: float, limit: int) -> list[str]:
        ids = [r[0] for r in self.db.execute(
            "SELECT session_id FROM sessions WHERE expires < ? LIMIT ?", (now, limit)).fetchall()]
        self.db.executemany("DELETE FROM pieces WHERE session_id=?", [(i,) for i in ids])
        self.db.executemany("DELETE FROM sessions WHERE session_id=?", [(i,) for i in ids])
        return ids

    def mark_session(self, session_id: str, state: SessionState) -> None:
        self.db.execute("UPDATE sessions SET state=?, closed=1 WHERE session_id=?", (state.value, session_id))

    def mark_sessions(self, session_ids: Collection[str], state: SessionState) -> None:
        self.db.executemany("UPDATE sessions SET state=?, closed=1 WHERE session_id=?",
                            [(state.value, i) for i in session_ids])

    def insert_piece(self, session_id: str, p: Piece) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO pieces VALUES (?,?,?,?)", (session_id, p.offset, p.length, _pack(p.blocks))
        )

    def list_pieces(self, session_id: str) -> list[Piece]:
        rows = self.db.execute(
            "SELECT offset, length, blocks FROM pieces WHERE session_id=? ORDER BY offset", (session_id,)
        ).fetchall()
        return [Piece(r[0], r[1], tuple(_unpack(r[2]))) for r in rows]

    # -- entries
    @staticmethod
    def _entry(row: Any) -> Entry | None:
        if row is None:
            return None
        return Entry(
            namespace_id=row[0], path_lower=row[1], path_display=row[3], name=row[4], kind=EntryKind(row[5]),
            id=row[6], seq=row[7], rev=row[8], size=row[9], content_hash=row[10], blocks=_unpack(row[11]),
            client_modified=row[12], server_modified=row[13],
        )

    def get_entry(self, namespace_id: str, path_lower: str) -> Entry | None:
        return self._entry(
            self._one("SELECT * FROM entries WHERE namespace_id=? AND path_lower=?", namespace_id, path_lower)
        )

    def get_entries(self, namespace_id: str, path_lowers: Collection[str]) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for chunk in bulk.chunks(list(path_lowers)):
            rows = self.db.execute(f"SELECT * FROM entries WHERE namespace_id=? AND path_lower IN "
                                   f"({','.join('?' * len(chunk))})", (namespace_id, *chunk))
            out.update((e.path_lower, e) for e in map(self._entry, rows.fetchall()) if e is not None)
        return out

    def get_entry_by_id(self, file_id: str) -> Entry | None:
        return self._entry(self._one("SELECT * FROM entries WHERE id=? AND kind!='deleted'", file_id))

    def get_entry_by_rev(self, rev: str) -> Entry | None:
        current = self._entry(self._one("SELECT * FROM entries WHERE rev=? AND kind='file'", rev))
        if current is not None:
            return current
        row = self._one("SELECT * FROM revisions WHERE rev=?", rev)
        if row is None:
            return None
        return self._revision(row)

    @staticmethod
    def _revision(row: Any) -> Entry:
        return Entry(namespace_id=row[1], path_lower=row[2], path_display=row[3], name=row[4], kind=EntryKind.FILE,
                     id=row[5], seq=row[6], rev=row[0], size=row[7], content_hash=row[8], blocks=_unpack(row[9]),
                     client_modified=row[10], server_modified=row[11])

    def list_revisions(
        self, *, namespace_id: str | None = None, path_lower: str | None = None, file_id: str | None = None,
        before_seq: int | None = None, limit: int,
    ) -> list[Entry]:
        args: list[Any]
        if file_id is not None:
            where, args = "id=?", [file_id]
        else:
            where, args = "namespace_id=? AND path_lower=?", [namespace_id, path_lower]
        if before_seq is not None:
            where += " AND seq < ?"
            args.append(before_seq)
        rows = self.db.execute(
            f"SELECT * FROM revisions WHERE {where} ORDER BY server_modified DESC, seq DESC LIMIT ?", (*args, limit)
        ).fetchall()
        return [self._revision(r) for r in rows]

    @staticmethod
    def _revision_row(e: Entry) -> tuple[Any, ...]:
        return (e.rev, e.namespace_id, e.path_lower, e.path_display, e.name, e.id, e.seq, e.size, e.content_hash,
                _pack(e.blocks), e.client_modified, e.server_modified)

    def keep_revision(self, e: Entry) -> None:
        self.keep_revisions([e])

    def keep_revisions(self, entries: Sequence[Entry]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO revisions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                            [self._revision_row(e) for e in entries])

    def put_entry(self, e: Entry) -> None:
        self.put_entries([e])

    def put_entries(self, entries: Sequence[Entry]) -> None:
        latest = bulk.last_per_path(entries)
        old: dict[bulk.Key, int] = {}
        for ns, path_lowers in bulk.by_namespace(latest).items():
            for chunk in bulk.chunks(path_lowers):
                rows = self.db.execute(f"SELECT path_lower, size FROM entries WHERE namespace_id=? AND kind='file' "
                                       f"AND path_lower IN ({','.join('?' * len(chunk))})", (ns, *chunk))
                old.update(((ns, r[0]), r[1]) for r in rows.fetchall())
        self.db.executemany("UPDATE namespaces SET bytes_used = bytes_used + ? WHERE namespace_id=?",
                            [(delta, ns) for ns, delta in bulk.byte_growth(latest, old).items()])
        self.db.executemany(
            "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(e.namespace_id, e.path_lower, e.parent_lower, e.path_display, e.name, e.kind.value, e.id, e.seq,
              e.rev, e.size, e.content_hash, _pack(e.blocks), e.client_modified, e.server_modified)
             for e in latest.values()],
        )

    def list_entries(
        self, namespace_id: str, parent_lower: str, *, recursive: bool, after: str, limit: int,
        max_seq: int | None = None, min_seq: int | None = None, live_only: bool = False,
    ) -> list[Entry]:
        if recursive:
            # Everything below "/a" sorts in ["/a/", "/a0"): '0' follows '/' in code point order.
            # A range keeps the primary-key index in play where LIKE would scan the namespace.
            where = "namespace_id=? AND path_lower >= ? AND path_lower < ?"
            args: list[Any] = [namespace_id, parent_lower + "/", parent_lower + "0"]
        else:
            where = "namespace_id=? AND parent_lower=?"
            args = [namespace_id, parent_lower]
        where += " AND path_lower > ?"
        args.append(after)
        if max_seq is not None:
            where += " AND seq <= ?"
            args.append(max_seq)
        if min_seq is not None:
            where += " AND seq > ?"
            args.append(min_seq)
        if live_only:
            where += " AND kind != 'deleted'"
        rows = self.db.execute(
            f"SELECT * FROM entries WHERE {where} ORDER BY path_lower LIMIT ?", (*args, limit)
        ).fetchall()
        return [e for e in map(self._entry, rows) if e is not None]

    def list_changes(
        self, namespace_id: str, parent_lower: str, *, recursive: bool, since: int, upto: int, limit: int,
    ) -> list[Entry]:
        # Driven by the (namespace, seq) index: the cost follows how much changed since the cursor,
        # not how big the folder is (a path-ordered scan would read every row below it).
        where = "namespace_id=? AND seq > ? AND seq <= ?"
        args: list[Any] = [namespace_id, since, upto]
        if not recursive:
            where += " AND parent_lower=?"
            args.append(parent_lower)
        elif parent_lower:
            where += " AND path_lower >= ? AND path_lower < ?"
            args += [parent_lower + "/", parent_lower + "0"]
        rows = self.db.execute(
            f"SELECT * FROM entries INDEXED BY entries_seq WHERE {where} ORDER BY seq LIMIT ?", (*args, limit)
        ).fetchall()
        return [e for e in map(self._entry, rows) if e is not None]

    # -- garbage collection
    def referenced_blocks(self) -> set[bytes]:
        out: set[bytes] = set()
        for sql in ("SELECT blocks FROM entries WHERE kind='file'", "SELECT blocks FROM revisions",
                    "SELECT blocks FROM sessions WHERE state='open'",
                    "SELECT p.blocks FROM pieces p JOIN sessions s USING (session_id) WHERE s.state='open'"):
            for (packed,) in self.db.execute(sql):
                out.update(_unpack(packed))
        return out

    def open_session_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT session_id FROM sessions WHERE state='open'")}

    def count_open_sessions(self, account_id: str, now: float) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM sessions WHERE account_id=? AND state='open' AND expires>?",
                              (account_id, now)).fetchone()
        return int(row[0])

    def count_pending_jobs(self, account_id: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM jobs WHERE state=? AND account_id=?",
                              (JobState.PENDING.value, account_id)).fetchone()
        return int(row[0])

    def expire_revisions(self, superseded_before: float) -> int:
        # A version stopped being current when something newer of the same file id was written: a
        # later version or a deletion marker (both carry a higher seq of that namespace).
        cur = self.db.execute(
            "DELETE FROM revisions WHERE EXISTS (SELECT 1 FROM revisions n WHERE n.id = revisions.id "
            "AND n.seq > revisions.seq AND n.server_modified < ?) OR EXISTS (SELECT 1 FROM entries e "
            "WHERE e.id = revisions.id AND e.seq > revisions.seq AND e.server_modified < ?)",
            (superseded_before, superseded_before))
        return cur.rowcount

    # -- jobs
    @staticmethod
    def _job(row: Any) -> Job | None:
        if row is None:
            return None
        return Job(row[0], row[1], row[2], JobState(row[3]), row[4], row[5], row[6], row[7], row[10])

    def insert_job(self, j: Job) -> None:
        self.db.execute(
            "INSERT INTO jobs (job_id, account_id, kind, state, created, request, result, completed, run_after) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (j.job_id, j.account_id, j.kind, j.state.value, j.created, j.request, j.result, j.completed, j.run_after),
        )

    def get_job(self, job_id: str) -> Job | None:
        return self._job(self._one("SELECT * FROM jobs WHERE job_id=?", job_id))

    def complete_job(self, job_id: str, result: str, completed: float) -> None:
        self.db.execute(
            "UPDATE jobs SET state=?, result=?, completed=? WHERE job_id=?",
            (JobState.COMPLETE.value, result, completed, job_id),
        )

    def fail_job(self, job_id: str, completed: float) -> None:
        self.db.execute("UPDATE jobs SET state=?, completed=? WHERE job_id=? AND state=?",
                        (JobState.FAILED.value, completed, job_id, JobState.PENDING.value))

    def pending_jobs(self) -> list[Job]:
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE state=? ORDER BY created, rowid", (JobState.PENDING.value,)
        ).fetchall()
        return [j for j in map(self._job, rows) if j is not None]

    def delete_jobs_before(self, completed_before: float) -> int:
        cur = self.db.execute(
            "DELETE FROM jobs WHERE state!=? AND completed < ?", (JobState.PENDING.value, completed_before)
        )
        return cur.rowcount

    # -- change feeds and search
    def namespace_seqs(self, namespace_ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        ids = list(namespace_ids)
        for i in range(0, len(ids), 500):  # stay far below SQLite's bound-parameter limit
            chunk = ids[i : i + 500]
            rows = self.db.execute(
                f"SELECT namespace_id, seq FROM namespaces WHERE namespace_id IN ({','.join('?' * len(chunk))})",
                chunk).fetchall()
            out.update((str(r[0]), int(r[1])) for r in rows)
        return out

    def search_entries(
        self, namespace_id: str, under_lower: str, terms: Sequence[str], kinds: Sequence[NameFilter], *,
        by_relevance: bool, after: SearchKey | None, limit: int,
    ) -> list[tuple[Entry, SearchKey]]:
        name = "substr(path_lower, length(parent_lower) + 2)"  # the lower-cased last component
        key_args: list[Any] = []
        if by_relevance:
            starts = []
            for t in terms:
                starts.append("(" + " OR ".join([f"instr({name}, ?) = 1"] + [f"instr({name}, ?) > 0"] * len(
                    WORD_BREAKS)) + ")")
                key_args += [t, *(b + t for b in WORD_BREAKS)]
            keys = f"-({' + '.join(starts) or '0'}) AS k1, length({name}) AS k2"
        else:
            keys = "-server_modified AS k1, 0 AS k2"
        # Everything below "/a" sorts in ["/a/", "/a0"): the primary-key range, as in list_entries.
        where = ["namespace_id = ?", "path_lower >= ?", "path_lower < ?"]
        args: list[Any] = [namespace_id, under_lower + "/", under_lower + "0"]
        for t in terms:
            where.append(f"instr({name}, ?) > 0")
            args.append(t)
        alternatives = []
        for f in kinds:
            cond = "kind = ?"
            args.append(f.kind)
            for suffixes, negate in ((f.suffixes, False), (f.exclude, True)):
                if suffixes is None or (negate and not suffixes):
                    continue
                ends = [f"(substr(path_lower, ?) = ? AND length({name}) > ?)" for _ in suffixes] or ["0"]
                cond += f" AND {'NOT ' if negate else ''}({' OR '.join(ends)})"
                for suffix in suffixes:
                    args += [-len(suffix), suffix, len(suffix)]
            alternatives.append(f"({cond})")
        where.append(f"({' OR '.join(alternatives) or '0'})")
        sql = f"SELECT * FROM (SELECT *, {keys} FROM entries WHERE {' AND '.join(where)})"
        if after is not None:
            sql += " WHERE (k1, k2, path_lower) > (?, ?, ?)"
            args += list(after)
        sql += " ORDER BY k1, k2, path_lower LIMIT ?"
        rows = self.db.execute(sql, (*key_args, *args, limit)).fetchall()
        out: list[tuple[Entry, SearchKey]] = []
        for row in rows:
            entry = self._entry(row)
            assert entry is not None
            out.append((entry, (float(row[-2]), int(row[-1]), entry.path_lower)))
        return out

    # -- per-database settings
    def get_setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def setting_or_default(self, key: str, default: str) -> str:
        self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, default))
        value = self.get_setting(key)
        assert value is not None
        return value

    # -- reset (the admin API of test servers)
    def _tables(self) -> list[str]:
        rows = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('meta', 'alembic_version') "
            "AND name NOT LIKE 'sqlite_%'")
        return [str(r[0]) for r in rows.fetchall()]

    def _delete_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run the deletes, retrying those a foreign key refuses once the rows referring to theirs are gone."""
        for _ in range(len(statements) + 1):
            refused = []
            for sql, args in statements:
                try:
                    self.db.execute(sql, args)
                except sqlite3.IntegrityError:
                    refused.append((sql, args))
            if not refused:
                return
            statements = refused
        raise sqlite3.IntegrityError(f"cannot delete: {statements[0][0]}")

    def lock_namespaces(self, namespace_ids: Sequence[str], wait: float | None) -> frozenset[str]:
        return frozenset()  # one writer thread in one process: the in-process locks are the whole story

    def reset_all(self) -> None:
        # Every table but meta and alembic_version (a file whose revision row went would not open
        # again), including those added later: a reset leaves nothing of anyone's.
        self._delete_all([(f'DELETE FROM "{t}"', ()) for t in self._tables()])

    def reset_account(self, account_id: str) -> list[str]:
        namespaces = [r[0] for r in self.db.execute(
            "SELECT namespace_id FROM namespaces WHERE owner_account_id=?", (account_id,)).fetchall()]
        sessions = [r[0] for r in self.db.execute(
            "SELECT session_id FROM sessions WHERE account_id=?", (account_id,)).fetchall()]
        self.db.executemany("DELETE FROM pieces WHERE session_id=?", [(i,) for i in sessions])
        statements: list[tuple[str, tuple[Any, ...]]] = []
        # Rows of any table keyed by the account or by one of its namespaces (tables added later too).
        for table in self._tables():
            columns = {r[1] for r in self.db.execute(f'PRAGMA table_info("{table}")').fetchall()}
            for column in ("account_id", "owner_account_id"):
                if column in columns:
                    statements.append((f'DELETE FROM "{table}" WHERE {column}=?', (account_id,)))
            if "namespace_id" in columns:
                statements += [(f'DELETE FROM "{table}" WHERE namespace_id=?', (ns,)) for ns in namespaces]
        self._delete_all(statements)
        return sessions

    def set_session_expiry(self, session_id: str, expires: float) -> None:
        self.db.execute("UPDATE sessions SET expires=? WHERE session_id=?", (expires, session_id))


_Work = tuple[Callable[[Any], Any], Future[Any]]
_GROUP_MAX = 256  # write transactions folded into one SQLite commit at most


class SqliteMetadataStore:
    def __init__(self, path: Path, *, memory: bool = False) -> None:
        self.path = path
        # memory: one private in-memory database on the writer's connection; reads queue with the
        # writes (a shared-cache database would answer concurrent readers SQLITE_LOCKED instead).
        self.memory = memory
        if not memory:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Readers run beside the writer (WAL): a long batch commit must not stall auth or /check.
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-read")
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._dead: Exception | None = None  # why the writer thread could not start
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-write", daemon=True)
        self._writer.start()
        self.run_sync(lambda tx: None)  # create the schema now: fail early on a bad path

    def _connect(self, *, writer: bool = False) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(":memory:" if self.memory else self.path, isolation_level=None, timeout=30,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            if writer:
                self._create_or_upgrade(db)
            self._local.db = db
        return db

    def _create_or_upgrade(self, db: sqlite3.Connection) -> None:
        """Bring the file to the schema HEAD (#5): the embedded default migrates itself on open."""
        db.execute("BEGIN IMMEDIATE")
        try:
            revision = migrate.sqlite_revision(db)
            if revision is None:  # a fresh file: the schema at HEAD, in one transaction
                migrate.create_sqlite(db)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif revision == "legacy":  # a file of a release before Alembic: to the baseline in place
                self._upgrade_legacy(db)
                migrate.stamp_sqlite(db, migrate.BASELINE)
            elif revision not in migrate.REVISIONS:
                raise SchemaOutdated(outdated_message(revision, f"sqlite:///{self.path}"))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already (disk full)
                db.execute("ROLLBACK")
            raise
        if migrate.sqlite_revision(db) != migrate.HEAD:
            migrate.upgrade(f"sqlite:///{self.path}")

    @staticmethod
    def _upgrade_legacy(db: sqlite3.Connection) -> None:
        """Schema versions 1..3 of the releases before Alembic, brought to the baseline revision."""
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else None
        if version is not None and version > SCHEMA_VERSION:
            raise StoreUnavailable(f"{version=} is newer than this localbox ({SCHEMA_VERSION})")
        if version == 1:
            for statement in _UPGRADES_TO_2:
                db.execute(statement)
        if version is not None and version < 3:
            _upgrade_tokens_to_3(db)
        for statement in (SCHEMA + TEAM_SCHEMA).split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _write_loop(self) -> None:
        """Group commit: every write transaction queued meanwhile joins one SQLite transaction, each
        inside its own savepoint (so one failing leaves the others intact), and one fsync makes them
        all durable.  Results are released only after that COMMIT."""
        try:
            db = self._connect(writer=True)
        except Exception as e:  # e.g. a full disk at start: fail every caller instead of hanging them
            self._fail_all(StoreUnavailable(f"metadata store: {e}"))
            return
        while True:
            first = self._queue.get()
            if first is None:
                db.close()
                return
            group = [first]
            while len(group) < _GROUP_MAX:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(nxt)
            self._commit_group(db, group)

    @staticmethod
    def _commit_group(db: sqlite3.Connection, group: list[_Work]) -> None:
        """Run a group in one transaction; every future gets its outcome only after COMMIT."""
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for fn, fut in group:
                db.execute("SAVEPOINT work")
                try:
                    outcomes.append((fut, fn(_Tx(db)), None))
                    db.execute("RELEASE work")
                except Exception as e:
                    if isinstance(e, sqlite3.OperationalError) or not db.in_transaction:
                        raise  # the whole transaction is suspect: fail the group, retryably
                    db.execute("ROLLBACK TO work")
                    db.execute("RELEASE work")
                    outcomes.append((fut, None, e))
            db.execute("COMMIT")
        except Exception as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            error = StoreUnavailable(f"metadata store: {e}")
            for _, fut in group:
                fut.set_exception(error)
            return
        for fut, result, err in outcomes:
            if err is None:
                fut.set_result(result)
            else:
                fut.set_exception(err)

    def _fail_all(self, error: Exception) -> None:
        self._dead = error
        while True:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                return
            if work is not None:
                work[1].set_exception(error)

    def _submit(self, fn: Callable[[Any], T]) -> Future[T]:
        fut: Future[T] = Future()
        if self._dead is not None:
            fut.set_exception(self._dead)
            return fut
        self._queue.put((fn, fut))
        if self._dead is not None:  # the writer died meanwhile: make sure nobody waits on the queue
            self._fail_all(self._dead)
        return fut

    def _read(self, fn: Callable[[Any], T]) -> T:
        db = self._connect()
        db.execute("BEGIN DEFERRED")
        try:
            return fn(_Tx(db))
        except sqlite3.OperationalError as e:
            raise StoreUnavailable(str(e)) from e
        finally:
            db.execute("ROLLBACK")

    async def run(self, fn: Callable[[Any], T]) -> T:
        return await asyncio.wrap_future(self._submit(fn))

    async def read(self, fn: Callable[[Any], T]) -> T:
        if self.memory:
            return await self.run(fn)
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)

    def run_sync(self, fn: Callable[[Any], T]) -> T:
        return self._submit(fn).result()

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
        # Reader threads' connections close with their threads.
        self._readers.shutdown(wait=True)
