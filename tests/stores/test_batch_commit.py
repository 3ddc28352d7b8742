"""A batch commit reads ahead and writes behind (services/batch_tx.py): on every backend it must give the
same outcomes and leave the same namespace as committing the entries one store call at a time did."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from stores.test_metadata_store import pg_store, store  # noqa: F401  (fixtures: every backend)

from localbox.domain.errors import DomainError, SessionLookupError
from localbox.domain.models import Account, EntryKind, SessionState, SessionType, UploadSession
from localbox.services.accounts import Caller
from localbox.services.files import CommitSpec, Content, FolderCache, commit_file_tx
from localbox.services.upload_sessions import EntryOutcome, FinishEntry, commit_entries_tx

pytestmark = pytest.mark.unit

SIZE = 100
QUOTA = 600  # six files of SIZE fit; the batch tries more


def one_by_one(tx: Any, caller: Caller, entries: list[FinishEntry]) -> list[EntryOutcome]:
    """The commit as it was before batching: every read and write a store call of its own."""
    now, known, out = time.time(), FolderCache(), list[EntryOutcome]()
    for e in entries:
        try:
            s = tx.get_session(e.session_id)
            if s is None or s.account_id != caller.account.account_id or s.state != SessionState.OPEN:
                raise SessionLookupError("not_found")
            out.append(commit_file_tx(tx, caller, e.commit, Content(s.offset, tuple(s.blocks)), now, known))
            tx.mark_session(s.session_id, SessionState.COMMITTED)
        except DomainError as err:
            out.append(err)
    return out


def setup(db: Any, n: int) -> tuple[Caller, list[str]]:
    a = Account(f"dbid:batch{n}", f"batch{n}@example.com", "B", "C", f"ns{n}", 1.0)
    sessions = [f"pid_upload_session:{n}-{i}" for i in range(12)]

    def create(tx: Any) -> None:
        tx.insert_account(a)
        tx.insert_namespace(a.root_namespace_id, a.account_id)
        for i, sid in enumerate(sessions):
            # Contents repeat across the two runs (same digests), so the outcomes compare exactly.
            digest = hashlib.sha256(f"content {i}".encode()).digest()
            tx.insert_session(UploadSession(sid, a.account_id, SessionType.SEQUENTIAL, SIZE, True, 1.0,
                                            time.time() + 3600, [digest]))

    db.run_sync(create)
    return Caller(a, frozenset({"files.content.write"}), a.root_namespace_id, quota=QUOTA), sessions


def batch(sessions: list[str], existing_rev: str) -> list[FinishEntry]:
    s = sessions

    def spec(path: str, mode: str = "add", **kw: Any) -> CommitSpec:
        return CommitSpec(path, mode, **kw)

    return [
        FinishEntry(s[0], SIZE, spec("/d/a.txt")),
        FinishEntry(s[1], SIZE, spec("/d/A.txt", autorename=True)),  # taken: "A (1).txt"
        FinishEntry(s[2], SIZE, spec("/d/a.txt")),  # conflict/file
        FinishEntry(s[3], SIZE, spec("/d/a.txt", "overwrite")),  # replaces entry 0, which is kept as a revision
        FinishEntry(s[4], SIZE, spec("/d/a.txt/x")),  # conflict/file_ancestor
        FinishEntry(s[0], SIZE, spec("/d/again.txt")),  # the same session twice: not_found
        FinishEntry(s[5], SIZE, spec("/e/f/g.bin")),  # creates /e and /e/f
        FinishEntry(s[6], SIZE, spec("/E/F/h.bin")),  # into those folders, displayed as created
        FinishEntry(s[7], SIZE, spec("/old.txt", "update", rev=existing_rev, autorename=True)),
        FinishEntry(s[8], SIZE, spec("/old.txt", "update", rev="0123456789abcdef", autorename=True)),
        FinishEntry(s[9], SIZE, spec("/e/too-much.bin")),  # past the quota: insufficient_space
        FinishEntry(s[10], SIZE, spec("/bad//path")),  # malformed_path
        FinishEntry(s[11], SIZE, spec("/e")),  # a folder is there: conflict/folder
    ]


def comparable(o: EntryOutcome) -> Any:
    if isinstance(o, DomainError):
        return ("error", o.to_json())
    return ("ok", o.path_display, o.name, o.size, o.content_hash, o.kind)


def namespace_state(db: Any, caller: Caller, sessions: list[str]) -> Any:
    ns = caller.namespace_id

    def read(tx: Any) -> Any:
        tree = [(e.path_display, e.kind, e.size, e.content_hash, e.seq)
                for e in tx.list_entries(ns, "", recursive=True, after="", limit=100)]
        revisions = [(r.path_lower, r.size) for r in tx.list_revisions(namespace_id=ns, path_lower="/d/a.txt",
                                                                        limit=10)]
        states = [tx.get_session(s).state for s in sessions]
        return tree, revisions, states, tx.bytes_used(caller.account.account_id), tx.current_seq(ns)

    return db.run_sync(read)


def test_a_batch_commits_as_one_entry_at_a_time_did(store: Any) -> None:  # noqa: F811
    results = []
    for n, commit in enumerate([one_by_one, lambda tx, c, es: commit_entries_tx(tx, c, es, True)]):
        caller, sessions = setup(store, n)
        old = store.run_sync(lambda tx, c=caller: commit_file_tx(
            tx, c, CommitSpec("/old.txt", "add"), Content(SIZE, (hashlib.sha256(b"old").digest(),)), 1.0))
        entries = batch(sessions, old.rev)
        outcomes = store.run_sync(lambda tx, c=caller, es=entries, f=commit: f(tx, c, es))
        results.append(([comparable(o) for o in outcomes], namespace_state(store, caller, sessions)))
    (reference, reference_state), (batched, batched_state) = results
    assert batched == reference
    assert batched_state == reference_state
    # And what the reference says is what Dropbox's rules say (so the comparison compares something).
    tags = [o[1]["tags"] if o[0] == "error" else o[1] for o in batched]
    assert tags == ["/d/a.txt", "/d/A (1).txt", ["conflict", "file"], "/d/a.txt", ["conflict", "file_ancestor"],
                    ["not_found"], "/e/f/g.bin", "/e/f/h.bin", "/old.txt", "/old (conflicted copy).txt",
                    ["insufficient_space"], ["malformed_path"], ["conflict", "folder"]]
    tree, revisions, states, used, _ = batched_state
    assert [t[:2] for t in tree if t[1] == EntryKind.FOLDER] == [("/d", "folder"), ("/e", "folder"), ("/e/f", "folder")]
    assert revisions == [("/d/a.txt", SIZE)] and used == QUOTA
    assert states.count(SessionState.COMMITTED) == 7
