"""Changing the namespace tree: folders, deletes, moves, copies and restores.

Every `*_tx` function checks everything before it writes, so a failure leaves the transaction as it
found it; batch jobs rely on that to run many entries in one transaction.  A move rewrites the
metadata rows of the moved subtree and leaves deletion markers at the old paths, which is what
list_folder cursors report; a copy shares the source's block digests, so no file byte is copied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from localbox.domain import paths
from localbox.domain.errors import (
    CallError,
    DomainError,
    PathLookupError,
    RelocationFailure,
    WriteFailure,
    conflict,
)
from localbox.domain.models import Entry, EntryKind
from localbox.services.access import can_access
from localbox.services.accounts import Caller
from localbox.services.files import (
    CommitSpec,
    Content,
    FolderCache,
    check_quota,
    commit_file_tx,
    create_parents,
    existing_parents,
    free_name,
    live,
    new_file_id,
    new_rev,
    now,
    resolve_tx,
    write_target_tx,
)
from localbox.services.mounts import write_namespaces
from localbox.services.write_locks import LocalNamespaceLocks, NamespaceBusy, NamespaceLocks
from localbox.stores.base import MetadataStore, MetadataTx

# Dropbox refuses operations that "would involve more than 10,000 files and folders" (too_many_files).
MAX_TREE_ENTRIES = 10_000

Outcome = Entry | DomainError
T = TypeVar("T")


def _subtree(tx: MetadataTx, top: Entry, too_many: DomainError) -> list[Entry]:
    """`top` and, for a folder, every live entry below it, parents before children."""
    if top.kind != EntryKind.FOLDER:
        return [top]
    below = tx.list_entries(top.namespace_id, top.path_lower, recursive=True, after="",
                            limit=MAX_TREE_ENTRIES, live_only=True)
    if len(below) >= MAX_TREE_ENTRIES:
        raise too_many
    return [top, *below]


def _bury(tx: MetadataTx, row: Entry, when: float) -> None:
    """Replace a live entry by a deletion marker (a new change for cursors); files keep their version."""
    if row.kind == EntryKind.FILE:
        tx.keep_revision(row)
    tx.put_entry(Entry(namespace_id=row.namespace_id, path_lower=row.path_lower, path_display=row.path_display,
                       name=row.name, kind=EntryKind.DELETED, id=row.id, seq=tx.next_seq(row.namespace_id),
                       server_modified=when))


def _target(tx: MetadataTx, caller: Caller, path: str) -> tuple[str, tuple[str, ...]]:
    """Namespace and names of a path to write to; raises WriteFailure."""
    ref = paths.parse(path, for_write=True)
    if ref.file_id is not None or ref.rev is not None or not ref.names:
        raise WriteFailure("malformed_path")
    return write_target_tx(tx, caller, ref)


def _is_mount_point(entry: Entry | None, ref: paths.PathRef) -> bool:
    return entry is not None and ref.is_root


def create_folder_tx(
    tx: MetadataTx, caller: Caller, path: str, *, autorename: bool, when: float, known: FolderCache | None = None,
) -> Entry:
    known = {} if known is None else known
    ns, names = _target(tx, caller, path)
    parent_display, existing = existing_parents(tx, ns, names, known)
    lower = paths.lower(paths.join(names))
    occupant = live(tx.get_entry(ns, lower))
    if occupant is not None:
        if not autorename:
            raise conflict("folder" if occupant.kind == EntryKind.FOLDER else "file")
        names = free_name(tx, ns, names, folder=True)
        lower = paths.lower(paths.join(names))
    parent_display = create_parents(tx, ns, names, existing, parent_display, when, known)
    display = f"{parent_display}/{names[-1]}"
    folder = Entry(namespace_id=ns, path_lower=lower, path_display=display, name=names[-1], kind=EntryKind.FOLDER,
                   id=new_file_id(), seq=tx.next_seq(ns), server_modified=when)
    tx.put_entry(folder)
    known[(ns, lower)] = display
    return folder


def delete_tx(tx: MetadataTx, caller: Caller, path: str, *, parent_rev: str | None, when: float) -> Entry:
    """Delete a file or a folder with everything below it; returns the metadata it had."""
    _, entry, ref = resolve_tx(tx, caller, path)
    if _is_mount_point(entry, ref):
        raise WriteFailure("team_folder")  # a member home or team folder is not deleted through files/
    if ref.is_root:
        raise WriteFailure("malformed_path")
    if entry is None:
        raise PathLookupError("not_found")
    if parent_rev is not None and entry.rev != parent_rev:
        # parent_rev guards a file against a concurrent change; folders have no rev to match.
        raise conflict("folder" if entry.kind == EntryKind.FOLDER else "file")
    for row in _subtree(tx, entry, CallError("too_many_files")):
        _bury(tx, row, when)
    return entry


def relocate_tx(
    tx: MetadataTx, caller: Caller, from_path: str, to_path: str, *, copy: bool, autorename: bool, when: float,
) -> Entry:
    """Move or copy a file or folder (with its subtree); returns the metadata at the destination."""
    try:
        _, src, src_ref = resolve_tx(tx, caller, from_path)
    except PathLookupError as e:
        raise RelocationFailure.wrap("from_lookup", e) from None
    if _is_mount_point(src, src_ref):
        raise RelocationFailure("from_write", "team_folder")
    if src_ref.is_root:
        raise RelocationFailure("from_lookup", "malformed_path")
    if src is None:
        raise RelocationFailure("from_lookup", "not_found")
    try:
        ns, names = _target(tx, caller, to_path)
        lower = paths.lower(paths.join(names))
        same_ns = ns == src.namespace_id
        if same_ns and src.kind == EntryKind.FOLDER and lower.startswith(src.path_lower + "/"):
            raise RelocationFailure("cant_move_folder_into_itself")
        parent_display, existing = existing_parents(tx, ns, names, {})
        in_place = same_ns and lower == src.path_lower
        # A move onto its own path in another case is a rename; onto itself exactly, a conflict.
        renames_case = in_place and not copy and f"{parent_display}/{names[-1]}" != src.path_display
        occupant = live(tx.get_entry(ns, lower))
        if occupant is not None and not renames_case:
            if not autorename:
                raise conflict("folder" if occupant.kind == EntryKind.FOLDER else "file")
            names = free_name(tx, ns, names, folder=src.kind == EntryKind.FOLDER)
            lower = paths.lower(paths.join(names))
    except WriteFailure as e:
        raise RelocationFailure.wrap("to", e) from None

    rows = _subtree(tx, src, RelocationFailure("too_many_files"))
    if copy:
        check_quota(tx, caller, sum(r.size for r in rows if r.kind == EntryKind.FILE),
                    RelocationFailure("insufficient_quota"))
    top_display = f"{create_parents(tx, ns, names, existing, parent_display, when, {})}/{names[-1]}"
    placed: list[Entry] = []
    for row in rows:
        new_lower = lower + row.path_lower[len(src.path_lower):]
        if not copy:
            if (ns, new_lower) != (row.namespace_id, row.path_lower):
                _bury(tx, row, when)
            elif row.kind == EntryKind.FILE:
                tx.keep_revision(row)  # renamed in place: the old rev stays reachable
        seq = tx.next_seq(ns)
        is_file = row.kind == EntryKind.FILE
        placed.append(Entry(
            namespace_id=ns, path_lower=new_lower, path_display=top_display + row.path_display[len(src.path_display):],
            name=names[-1] if row is src else row.name, kind=row.kind, id=new_file_id() if copy else row.id,
            seq=seq, rev=new_rev(seq) if is_file else "", size=row.size, content_hash=row.content_hash,
            blocks=row.blocks, client_modified=row.client_modified, server_modified=when if is_file else 0.0,
        ))
        tx.put_entry(placed[-1])
    return placed[0]


def restore_tx(tx: MetadataTx, caller: Caller, path: str, rev: str, *, when: float) -> Entry:
    """Make an earlier version of a file the current one at `path` (a new revision)."""
    version = tx.get_entry_by_rev(rev)
    if version is None or not can_access(tx, caller, version.namespace_id):
        raise CallError("invalid_revision")
    spec = CommitSpec(path=path, mode="overwrite", client_modified=version.client_modified)
    # Restoring a deleted file where it was brings its id back, so id-based history stays whole.
    ns, names = _target(tx, caller, path)
    marker = tx.get_entry(ns, paths.lower(paths.join(names)))
    revive = version.id if marker is not None and marker.kind == EntryKind.DELETED and marker.id == version.id else None
    return commit_file_tx(tx, caller, spec, Content(version.size, tuple(version.blocks)), when, revive_id=revive)


# -- batches (run by BatchService as persisted jobs) ------------------------------------------------
def _each(items: Sequence[Any], run: Callable[[Any], Entry]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for item in items:
        try:
            outcomes.append(run(item))
        except DomainError as e:
            outcomes.append(e)
    return outcomes


def create_folders_tx(tx: MetadataTx, caller: Caller, request: dict[str, Any], when: float) -> list[Outcome]:
    known: FolderCache = {}  # folders only appear in this batch, so the cache never goes stale
    return _each(request["paths"], lambda p: create_folder_tx(
        tx, caller, p, autorename=bool(request["autorename"]), when=when, known=known))


def delete_many_tx(tx: MetadataTx, caller: Caller, request: dict[str, Any], when: float) -> list[Outcome]:
    return _each(request["entries"], lambda e: delete_tx(tx, caller, e["path"], parent_rev=e["parent_rev"],
                                                         when=when))


def _relocate_many(copy: bool) -> Callable[[MetadataTx, Caller, dict[str, Any], float], list[Outcome]]:
    def run(tx: MetadataTx, caller: Caller, request: dict[str, Any], when: float) -> list[Outcome]:
        return _each(request["entries"], lambda e: relocate_tx(
            tx, caller, e["from_path"], e["to_path"], copy=copy, autorename=bool(request["autorename"]), when=when))

    return run


move_many_tx = _relocate_many(copy=False)
copy_many_tx = _relocate_many(copy=True)


@dataclass(frozen=True, slots=True)
class Revisions:
    is_deleted: bool
    server_deleted: float | None
    entries: list[Entry]
    has_more: bool


class TreeService:
    def __init__(self, store: MetadataStore, write_locks: NamespaceLocks | None = None) -> None:
        self.store = store
        self.write_locks = write_locks or LocalNamespaceLocks()

    async def _write(self, caller: Caller, entry_paths: list[str], fn: Callable[[MetadataTx], T]) -> T:
        """Run a write transaction holding the write locks of the namespaces it addresses (429 past the bound)."""
        try:
            targets = set(await write_namespaces(self.store, caller, entry_paths))
            async with self.write_locks.hold(targets) as held:
                def _locked(tx: MetadataTx) -> T:
                    held.take_all(tx, targets)
                    return fn(tx)

                return await self.store.run(_locked)
        except NamespaceBusy as busy:
            raise busy.rate_limited() from None

    async def create_folder(self, caller: Caller, path: str, *, autorename: bool) -> Entry:
        when = now()
        return await self._write(caller, [path], lambda tx: create_folder_tx(
            tx, caller, path, autorename=autorename, when=when))

    async def delete(self, caller: Caller, path: str, *, parent_rev: str | None) -> Entry:
        when = now()
        return await self._write(caller, [path], lambda tx: delete_tx(
            tx, caller, path, parent_rev=parent_rev, when=when))

    async def relocate(self, caller: Caller, from_path: str, to_path: str, *, copy: bool, autorename: bool) -> Entry:
        when = now()
        return await self._write(caller, [from_path, to_path], lambda tx: relocate_tx(
            tx, caller, from_path, to_path, copy=copy, autorename=autorename, when=when))

    async def restore(self, caller: Caller, path: str, rev: str) -> Entry:
        when = now()
        return await self._write(caller, [path], lambda tx: restore_tx(tx, caller, path, rev, when=when))

    async def create_folders(self, caller: Caller, request: dict[str, Any]) -> list[Outcome]:
        when = now()
        return await self._write(caller, list(request["paths"]), lambda tx: create_folders_tx(
            tx, caller, request, when))

    async def list_revisions(
        self, caller: Caller, path: str, *, by_id: bool, limit: int, before_rev: str | None,
    ) -> Revisions:
        def _read(tx: MetadataTx) -> Revisions:
            ns, current, ref = resolve_tx(tx, caller, path)
            marker = None
            if current is None and ref.names:
                marker = tx.get_entry(ns, paths.lower(paths.join(ref.names)))
            if current is None and marker is None:
                raise PathLookupError("not_found")
            if current is not None and current.kind != EntryKind.FILE:
                raise PathLookupError("not_file")
            subject = current or marker
            assert subject is not None
            before_seq = None
            if before_rev is not None:
                if by_id:
                    raise CallError("before_rev_not_supported")
                older = tx.get_entry_by_rev(before_rev)
                if older is None or (older.namespace_id, older.path_lower) != (ns, subject.path_lower):
                    raise CallError("invalid_before_rev")
                before_seq = older.seq
            versions = [] if current is None or (before_seq is not None and current.seq >= before_seq) else [current]
            room = limit + 1 - len(versions)
            if by_id:
                versions += tx.list_revisions(file_id=subject.id, limit=room)
            else:
                versions += tx.list_revisions(namespace_id=ns, path_lower=subject.path_lower, before_seq=before_seq,
                                              limit=room)
            return Revisions(is_deleted=current is None,
                             server_deleted=marker.server_modified if current is None and marker else None,
                             entries=versions[:limit], has_more=len(versions) > limit)

        return await self.store.read(_read)
