"""The namespace tree: committing files (write modes, conflicts, autorename), lookups, listings.

Functions named `*_tx` run inside a metadata transaction and never await; the upload-session
service composes them so that a session's state and the file it becomes change atomically.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from localbox.domain import paths
from localbox.domain.content_hash import hash_from_digests
from localbox.domain.errors import BadRequest, CallError, DomainError, PathLookupError, WriteFailure, conflict
from localbox.domain.models import Entry, EntryKind
from localbox.services import mount_listing
from localbox.services.access import can_access
from localbox.services.accounts import Caller
from localbox.services.cursors import CursorKey, seal, unseal
from localbox.services.mounts import locate_tx, mount_by_id_tx, mount_points_tx
from localbox.stores.base import BlobStore, MetadataStore, MetadataTx

DEFAULT_LIST_LIMIT = 2000


def new_file_id() -> str:
    return "id:" + secrets.token_urlsafe(16)  # 22 characters of [A-Za-z0-9_-], like Dropbox's ids


def new_rev(seq: int) -> str:
    # Dropbox revs are opaque lowercase hex of at least 9 characters; ours sort by change order.
    return f"{seq:010x}{secrets.token_hex(8)}"  # 64 random bits: unique across namespaces too


@dataclass(frozen=True, slots=True)
class CommitSpec:
    """CommitInfo as the core sees it (defaults applied by the edge)."""

    path: str
    mode: str  # "add" | "overwrite" | "update"
    rev: str | None = None
    autorename: bool = False
    strict_conflict: bool = False
    client_modified: float | None = None
    # CommitInfo.property_groups, by template id.  localbox keeps no file-property templates, so any
    # group names a template that "does not exist for the given identifier" (TemplateError).
    property_templates: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "mode": self.mode, "rev": self.rev, "autorename": self.autorename,
                "strict_conflict": self.strict_conflict, "client_modified": self.client_modified,
                "property_templates": list(self.property_templates)}

    @staticmethod
    def from_json(obj: dict[str, object]) -> CommitSpec:
        cm, rev, templates = obj.get("client_modified"), obj.get("rev"), obj.get("property_templates")
        return CommitSpec(
            path=str(obj["path"]), mode=str(obj["mode"]), rev=str(rev) if rev else None,
            autorename=bool(obj.get("autorename")), strict_conflict=bool(obj.get("strict_conflict")),
            client_modified=float(cm) if isinstance(cm, int | float) else None,
            property_templates=tuple(str(t) for t in templates) if isinstance(templates, list) else (),
        )


@dataclass(frozen=True, slots=True)
class Content:
    size: int
    blocks: tuple[bytes, ...]

    @property
    def content_hash(self) -> str:
        return hash_from_digests(self.blocks)


def _names_of(entry: Entry) -> tuple[str, ...]:
    return tuple(entry.path_display[1:].split("/")) if entry.path_display else ()


def live(entry: Entry | None) -> Entry | None:
    return None if entry is None or entry.kind == EntryKind.DELETED else entry


def resolve_tx(tx: MetadataTx, caller: Caller, path: str) -> tuple[str, Entry | None, paths.PathRef]:
    """Resolve a read path to (namespace, live entry or None, the path within that namespace).

    Paths through a team space mount continue in the mounted namespace (services/mounts.py); a
    mount point itself is the root of its namespace (`is_root`) whose entry is the mount folder."""
    ref = paths.parse(path)
    if ref.file_id is not None:
        base: tuple[str, ...] = ()
        entry = tx.get_entry_by_id(ref.file_id)
        if entry is None:
            mount = mount_by_id_tx(tx, caller, ref.file_id)
            if mount is None:
                raise PathLookupError("not_found")
            if not ref.names:
                return mount.namespace_id, mount.entry(), paths.PathRef(namespace_id=mount.namespace_id)
            ns = mount.namespace_id
        elif not can_access(tx, caller, entry.namespace_id):
            raise PathLookupError("not_found")
        elif not ref.names:
            return entry.namespace_id, entry, ref
        else:
            ns, base = entry.namespace_id, _names_of(entry)
        # "id:<folder id>/rest": the path continues below that folder, in its namespace.
        inner = paths.PathRef(names=base + ref.names, namespace_id=ns)
        return ns, live(tx.get_entry(ns, paths.lower(paths.join(inner.names)))), inner
    if ref.rev is not None:
        entry = tx.get_entry_by_rev(ref.rev)
        if entry is None or not can_access(tx, caller, entry.namespace_id):
            raise PathLookupError("not_found")
        return entry.namespace_id, entry, ref
    at = locate_tx(tx, caller, ref, PathLookupError)
    inner = paths.PathRef(names=at.names, namespace_id=at.namespace_id)
    if at.is_mount_point:
        assert at.mount is not None
        return at.namespace_id, at.mount.entry(), inner
    if not at.names:
        return at.namespace_id, None, inner
    return at.namespace_id, live(tx.get_entry(at.namespace_id, paths.lower(paths.join(at.names)))), inner


def folder_to_list_tx(tx: MetadataTx, caller: Caller, path: str) -> tuple[str, Entry | None, str]:
    """The folder a listing or cursor is about: (namespace, its entry or None for the root, path_lower).
    A mount point lists the root of its namespace (its entry is the mount folder).
    Raises PathLookupError not_found / not_folder / malformed_path as list_folder does."""
    ns, entry, ref = resolve_tx(tx, caller, path)
    if ref.is_root:
        return ns, entry, ""
    if entry is None:
        raise PathLookupError("not_found")
    if entry.kind != EntryKind.FOLDER:
        raise PathLookupError("not_folder")
    return ns, entry, entry.path_lower


def write_target_tx(tx: MetadataTx, caller: Caller, ref: paths.PathRef) -> tuple[str, tuple[str, ...]]:
    """Namespace and names of a plain or `ns:` path to write to.  Raises WriteFailure: malformed_path
    for a namespace root, conflict/folder for a mount point (a folder is there)."""
    at = locate_tx(tx, caller, ref, WriteFailure)
    if at.is_mount_point:
        raise conflict("folder")
    if not at.names:
        raise WriteFailure("malformed_path")
    return at.namespace_id, at.names


FolderCache = dict[tuple[str, str], str]  # (namespace, path_lower) -> path_display of a live folder


def existing_parents(tx: MetadataTx, ns: str, names: tuple[str, ...], known: FolderCache) -> tuple[str, int]:
    """Walk the ancestors of `names`: (display path of the deepest existing one, how many exist).

    Raises conflict/file_ancestor when one of them is a file.  Nothing can exist below a missing
    folder, so the walk stops there.
    """
    display = lower = ""
    for depth, name in enumerate(names[:-1]):
        lower += "/" + paths.lower(name)
        hit = known.get((ns, lower))
        if hit is None:
            entry = live(tx.get_entry(ns, lower))
            if entry is None:
                return display, depth
            if entry.kind == EntryKind.FILE:
                raise conflict("file_ancestor")
            hit = known[(ns, lower)] = entry.path_display
        display = hit
    return display, len(names) - 1


def create_parents(
    tx: MetadataTx, ns: str, names: tuple[str, ...], existing: int, display: str, now: float, known: FolderCache,
) -> str:
    lower = paths.lower(paths.join(names[:existing]))
    for name in names[existing:-1]:
        lower += "/" + paths.lower(name)
        display += "/" + name
        tx.put_entry(Entry(namespace_id=ns, path_lower=lower, path_display=display, name=name,
                           kind=EntryKind.FOLDER, id=new_file_id(), seq=tx.next_seq(ns), server_modified=now))
        known[(ns, lower)] = display
    return display


def commit_file_tx(
    tx: MetadataTx, caller: Caller, spec: CommitSpec, content: Content, now: float,
    known: FolderCache | None = None, revive_id: str | None = None,
) -> Entry:
    """Make `content` the file at `spec.path` following Dropbox's write-mode rules.

    `revive_id` is the id a new file takes instead of a fresh one (a restore brings a file back).

    Raises WriteFailure (malformed_path, conflict/..., no_write_permission), or CallError
    properties_error/template_not_found for property groups.  Writes nothing on failure.
    `known` caches folders seen in this transaction (a batch shares one).
    """
    known = {} if known is None else known
    if spec.property_templates:
        # properties_error is a top-level tag of both UploadError and UploadSessionFinishError.
        raise CallError("properties_error", "template_not_found", payload={"value": spec.property_templates[0]})
    ref = paths.parse(spec.path, for_write=True)
    if ref.file_id is not None:
        target = tx.get_entry_by_id(ref.file_id)
        mount = mount_by_id_tx(tx, caller, ref.file_id) if target is None and ref.names else None
        if mount is not None:
            ns, names = mount.namespace_id, ref.names  # below a mounted namespace's root
        elif target is None or not can_access(tx, caller, target.namespace_id):
            raise WriteFailure("malformed_path")
        else:
            # "id:<folder id>/rest" continues below that folder; below a file it is a file_ancestor conflict.
            ns, names = target.namespace_id, _names_of(target) + ref.names
    else:
        ns, names = write_target_tx(tx, caller, ref)
    parent_display, found_parents = existing_parents(tx, ns, names, known)
    content_hash = content.content_hash
    lower = paths.lower(paths.join(names))
    existing = live(tx.get_entry(ns, lower))

    replace: Entry | None = None
    failure: WriteFailure | None = None
    if existing is not None and existing.kind == EntryKind.FOLDER:
        failure = conflict("folder")
    elif existing is not None:
        same = existing.content_hash == content_hash and existing.size == content.size
        if same and not spec.strict_conflict:
            return existing  # identical content: nothing to write, and no conflict
        if spec.mode == "overwrite" or (spec.mode == "update" and spec.rev == existing.rev):
            replace = existing
        else:
            failure = conflict("file")
    elif spec.mode == "update" and spec.strict_conflict:
        failure = conflict("file")  # strict: the rev no longer exists at this path

    if failure is not None:
        if not spec.autorename:
            raise failure
        names = free_name(tx, ns, names, conflicted_copy=spec.mode == "update")
        lower = paths.lower(paths.join(names))

    check_quota(tx, caller, content.size - (replace.size if replace is not None else 0))
    parent_display = create_parents(tx, ns, names, found_parents, parent_display, now, known)
    if replace is not None:
        tx.keep_revision(replace)
    seq = tx.next_seq(ns)
    entry = Entry(
        namespace_id=ns, path_lower=lower,
        path_display=(replace.path_display if replace else f"{parent_display}/{names[-1]}"),
        name=replace.name if replace else names[-1], kind=EntryKind.FILE,
        id=replace.id if replace else revive_id or new_file_id(), seq=seq, rev=new_rev(seq), size=content.size,
        content_hash=content_hash, blocks=list(content.blocks),
        client_modified=spec.client_modified if spec.client_modified is not None else now,
        server_modified=now,
    )
    tx.put_entry(entry)
    return entry


def check_quota(tx: MetadataTx, caller: Caller, growth: int, error: DomainError | None = None) -> None:
    """Refuse a write that would take the account past its allocation (shrinking is always allowed)."""
    if caller.quota is not None and growth > 0 and tx.bytes_used(caller.account.account_id) + growth > caller.quota:
        raise error or WriteFailure("insufficient_space")


def free_name(
    tx: MetadataTx, ns: str, names: tuple[str, ...], *, conflicted_copy: bool = False, folder: bool = False,
) -> tuple[str, ...]:
    """The first autorename candidate for `names` that nothing live occupies."""
    parent_lower = paths.lower(paths.join(names[:-1]))
    for candidate in paths.autorename_candidates(names[-1], conflicted_copy=conflicted_copy, folder=folder):
        if len(candidate) > paths.MAX_NAME_LENGTH:
            raise WriteFailure("malformed_path")
        if live(tx.get_entry(ns, f"{parent_lower}/{paths.lower(candidate)}")) is None:
            return (*names[:-1], candidate)
    raise AssertionError("unreachable")  # pragma: no cover - the candidates never end


# -- list_folder cursors -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ListCursor:
    namespace_id: str
    path_lower: str
    recursive: bool
    include_deleted: bool
    limit: int
    since: int  # -1: the initial listing (live entries only); else changes after this seq
    upto: int | None  # the snapshot this page set is bounded by; None = take the latest at next call
    after: str  # where the previous page ended: a path_lower (first listing) or a seq (change feed)

    def encode(self, key: bytes) -> str:
        raw = json.dumps([self.namespace_id, self.path_lower, self.recursive, self.include_deleted, self.limit,
                          self.since, self.upto, self.after], separators=(",", ":")).encode()
        return seal("AAH", key, raw)

    @staticmethod
    def decode(cursor: str, key: bytes) -> ListCursor:
        """The cursor `encode` made with this key.  Anything else (garbage, tampered with, another
        database's) is Dropbox's 400 for an invalid cursor."""
        try:
            ns, path, rec, inc, limit, since, upto, after = json.loads(unseal("AAH", key, cursor))
            return ListCursor(str(ns), str(path), bool(rec), bool(inc), int(limit), int(since),
                              None if upto is None else int(upto), str(after))
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            raise BadRequest('Invalid "cursor" parameter') from e


@dataclass(frozen=True, slots=True)
class ListPage:
    entries: list[Entry]
    cursor: str
    has_more: bool


class FileService:
    def __init__(self, store: MetadataStore, blobs: BlobStore, cursor_key: CursorKey | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.cursor_key = cursor_key or CursorKey(store)

    async def get_metadata(self, caller: Caller, path: str, include_deleted: bool = False) -> Entry:
        def _get(tx: MetadataTx) -> Entry:
            ns, entry, ref = resolve_tx(tx, caller, path)
            if entry is None and include_deleted and not ref.is_root and ref.names:
                dead = tx.get_entry(ns, paths.lower(paths.join(ref.names)))
                if dead is not None:
                    return dead
            if entry is None:
                raise PathLookupError("not_found")
            return entry

        return await self.store.read(_get)

    async def file_for_download(self, caller: Caller, path: str) -> Entry:
        entry = await self.get_metadata(caller, path)
        if entry.kind != EntryKind.FILE:
            raise PathLookupError("not_file")
        return entry

    def read(self, entry: Entry, start: int, end: int) -> AsyncIterator[bytes]:
        return self.blobs.open(entry.blocks, entry.size, start, end)

    async def list_folder(
        self, caller: Caller, path: str, *, recursive: bool, include_deleted: bool, limit: int | None,
    ) -> ListPage:
        key = await self.cursor_key.get()

        def _start(tx: MetadataTx) -> ListPage:
            ns, entry, base = folder_to_list_tx(tx, caller, path)
            if mount_listing.descends_tx(tx, caller, ns, base, recursive):
                return ListPage(*mount_listing.start_tx(tx, caller, include_deleted, limit or DEFAULT_LIST_LIMIT,
                                                        key))
            cursor = ListCursor(ns, base, recursive, include_deleted, limit or DEFAULT_LIST_LIMIT,
                                since=-1, upto=tx.current_seq(ns), after="")
            head = [entry] if recursive and entry is not None else []
            if not base:
                head += mount_points_tx(tx, caller, ns)  # the team root shows its mounts
            return self._page(tx, cursor, head, key)

        return await self.store.read(_start)

    async def list_folder_continue(self, caller: Caller, cursor_text: str) -> ListPage:
        key = await self.cursor_key.get()
        if mount_listing.is_team_cursor(cursor_text):
            team = mount_listing.TeamCursor.decode(cursor_text, key)
            return await self.store.read(lambda tx: ListPage(*mount_listing.continue_tx(tx, caller, team, key)))
        cursor = ListCursor.decode(cursor_text, key)

        def _continue(tx: MetadataTx) -> ListPage:
            if not can_access(tx, caller, cursor.namespace_id):
                raise BadRequest('Invalid "cursor" parameter')
            if cursor.path_lower and live(tx.get_entry(cursor.namespace_id, cursor.path_lower)) is None:
                raise PathLookupError("not_found")
            c = cursor
            if c.upto is None:
                c = ListCursor(c.namespace_id, c.path_lower, c.recursive, c.include_deleted, c.limit,
                               c.since, tx.current_seq(c.namespace_id), "")
            return self._page(tx, c, [], key)

        return await self.store.read(_continue)

    def _page(self, tx: MetadataTx, c: ListCursor, head: list[Entry], key: bytes) -> ListPage:
        room = max(c.limit - len(head), 1)
        if c.since < 0:
            # A first listing pages in path order and shows deletion markers only when asked.
            rows = tx.list_entries(c.namespace_id, c.path_lower, recursive=c.recursive, after=c.after,
                                   limit=room + 1, max_seq=c.upto, live_only=not c.include_deleted)
        else:
            # A change feed pages in change order (parents before children) and always reports deletions.
            assert c.upto is not None
            rows = tx.list_changes(c.namespace_id, c.path_lower, recursive=c.recursive,
                                   since=int(c.after) if c.after else c.since, upto=c.upto, limit=room + 1)
        more = len(rows) > room
        rows = rows[:room]
        if more:
            last = rows[-1].path_lower if c.since < 0 else str(rows[-1].seq)
            nxt = ListCursor(c.namespace_id, c.path_lower, c.recursive, c.include_deleted, c.limit,
                             c.since, c.upto, last)
        else:
            nxt = ListCursor(c.namespace_id, c.path_lower, c.recursive, c.include_deleted, c.limit,
                             c.upto if c.upto is not None else c.since, None, "")
        return ListPage(entries=head + rows, cursor=nxt.encode(key), has_more=more)


def now() -> float:
    return time.time()
