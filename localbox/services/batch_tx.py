"""A write-behind view of one metadata transaction, for commits of many entries at once (#5).

Committing a finish entry one store call at a time costs about seven statements (its session, the
entry at its path, a seq, the old size, the byte count, the row, the session's state); on PostgreSQL
each is a network round trip, so a 1000-entry batch spent seconds waiting.  BufferedTx reads what a
batch needs in a few set-based queries up front (the sessions, the entries at the target paths and
their ancestors), answers the commit rules' reads from that, and writes everything at the end in a
few multi-row statements.  The commit rules themselves (files.commit_file_tx) are unchanged: they
see a MetadataTx and cannot tell the difference.

Why this is the same transaction as before: it all runs inside the caller's transaction, under the
same locks (sessions are locked as they are read, the namespace before its first read, as the store
does for single reads).  Every write goes through the caches, so later reads in the batch see earlier
entries exactly as they would have seen the rows.  Change counters are handed out from the stored
value and advanced once at the end, which is exact because a writer holds its namespace until it
commits (a single writer on SQLite, an advisory lock per namespace on PostgreSQL); flush() checks it.
Any other store call writes the pending rows out and forgets the caches first, so it sees the
transaction as it really is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from localbox.domain.models import Entry, EntryKind, Piece, SessionState, UploadSession
from localbox.stores.base import MetadataTx

# Reads of tables this view never writes (who may use a namespace, team mounts): no need to write
# out what is pending, or to forget what is cached, before they run.
_UNAFFECTED_READS = frozenset({"get_team", "get_team_namespace", "list_team_namespaces", "team_member_of_account"})


def _file_size(entry: Entry | None) -> int:
    return entry.size if entry is not None and entry.kind == EntryKind.FILE else 0


class BufferedTx:
    """A MetadataTx over `tx` that caches sessions and entries and defers the writes of a commit
    (put_entry, keep_revision, next_seq, mark_session) until flush()."""

    def __init__(self, tx: MetadataTx) -> None:
        self._tx = tx
        self._sessions: dict[str, UploadSession | None] = {}
        self._entries: dict[tuple[str, str], Entry | None] = {}
        self._owners: dict[str, str | None] = {}
        self._puts: list[Entry] = []
        self._revisions: list[Entry] = []
        self._marked: dict[SessionState, list[str]] = {}
        self._seqs: dict[str, list[int]] = {}  # namespace -> [stored seq, last seq handed out]
        self._bytes: dict[str, int] = {}  # account -> bytes_used as stored
        self._growth: dict[str, int] = {}  # namespace -> bytes the pending puts add

    # -- reading ahead ------------------------------------------------------------------------------
    def prefetch_sessions(self, session_ids: list[str]) -> None:
        wanted = [i for i in dict.fromkeys(session_ids) if i not in self._sessions]
        if wanted:
            found = self._tx.get_sessions(wanted)
            self._sessions.update((i, found.get(i)) for i in wanted)

    def prefetch_entries(self, namespace_id: str, path_lowers: list[str]) -> None:
        wanted = [p for p in dict.fromkeys(path_lowers) if (namespace_id, p) not in self._entries]
        if wanted:
            found = self._tx.get_entries(namespace_id, wanted)
            self._entries.update(((namespace_id, p), found.get(p)) for p in wanted)

    # -- reads answered from the caches ---------------------------------------------------------------
    def get_session(self, session_id: str) -> UploadSession | None:
        if session_id not in self._sessions:
            self._sessions[session_id] = self._tx.get_session(session_id)
        return self._sessions[session_id]

    def get_entry(self, namespace_id: str, path_lower: str) -> Entry | None:
        key = (namespace_id, path_lower)
        if key not in self._entries:  # nothing pending at this path: the stored row is current
            self._entries[key] = self._tx.get_entry(namespace_id, path_lower)
        return self._entries[key]

    def namespace_owner(self, namespace_id: str) -> str | None:
        if namespace_id not in self._owners:
            self._owners[namespace_id] = self._tx.namespace_owner(namespace_id)
        return self._owners[namespace_id]

    def list_pieces(self, session_id: str) -> list[Piece]:
        return self._tx.list_pieces(session_id)  # pieces are never written through this view

    def current_seq(self, namespace_id: str) -> int:
        seqs = self._seqs.get(namespace_id)
        return seqs[1] if seqs is not None else self._tx.current_seq(namespace_id)

    def bytes_used(self, account_id: str) -> int:
        if account_id not in self._bytes:
            self._bytes[account_id] = self._tx.bytes_used(account_id)
        pending = sum(d for ns, d in self._growth.items() if self.namespace_owner(ns) == account_id)
        return self._bytes[account_id] + pending

    # -- deferred writes ------------------------------------------------------------------------------
    def next_seq(self, namespace_id: str) -> int:
        seqs = self._seqs.get(namespace_id)
        if seqs is None:
            stored = self._tx.current_seq(namespace_id)
            seqs = self._seqs[namespace_id] = [stored, stored]
        seqs[1] += 1
        return seqs[1]

    def put_entry(self, entry: Entry) -> None:
        ns = entry.namespace_id
        delta = _file_size(entry) - _file_size(self.get_entry(ns, entry.path_lower))
        if delta:
            self._growth[ns] = self._growth.get(ns, 0) + delta
        self._entries[(ns, entry.path_lower)] = entry
        self._puts.append(entry)

    def keep_revision(self, entry: Entry) -> None:
        self._revisions.append(entry)

    def mark_session(self, session_id: str, state: SessionState) -> None:
        session = self.get_session(session_id)
        if session is not None:
            self._sessions[session_id] = replace(session, state=state, closed=True)
        self._marked.setdefault(state, []).append(session_id)

    def flush(self) -> None:
        """Write out everything pending, in a few statements."""
        if self._revisions:
            self._tx.keep_revisions(self._revisions)
        if self._puts:
            self._tx.put_entries(self._puts)
        for ns, (stored, handed) in self._seqs.items():
            if handed > stored and self._tx.advance_seq(ns, handed - stored) != handed:
                # Someone advanced the counter while this transaction held the namespace: never commit that.
                raise RuntimeError(f"the change counter of namespace {ns} moved during a commit")
        for state, session_ids in self._marked.items():
            self._tx.mark_sessions(session_ids, state)
        self._puts, self._revisions, self._marked = [], [], {}
        self._seqs.clear()
        self._bytes.clear()
        self._growth.clear()

    def __getattr__(self, name: str) -> Any:
        # Any other store call may read or write what is pending: write it out, forget what was
        # cached, and let the transaction answer.
        if name in _UNAFFECTED_READS:
            return getattr(self._tx, name)
        self.flush()
        self._sessions.clear()
        self._entries.clear()
        return getattr(self._tx, name)
