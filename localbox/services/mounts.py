"""Team space mounts: the one place where a path becomes (namespace, names).

In Dropbox's team space the team root namespace holds each member's home folder, named after the
member ("/Alice Smith"), and each team folder ("/Marketing") as mounted folders.  A path that
addresses the team root (with `Dropbox-API-Path-Root: root`, a `namespace_id` root of the team
root, or an `ns:<team root>/...` path) and whose first name is a mount visible to the caller
continues in the mounted namespace: "/Marketing/a.txt" is "/a.txt" of the Marketing namespace.
Visibility is the access rule (`access.can_access`): a member sees their own home and every team
folder; an admin in `whole_team` Select-Admin mode sees every home too.  A mount hides anything of
the same name stored in the team root namespace itself, as it does in Dropbox.

Resolution happens inside the transaction that uses it, so membership changes apply at once and a
batch job resumed after a restart resolves exactly as the call that made it.  What callers see is
the other direction (`TeamView`): the API layer presents entries of mounted namespaces under their
mount path, with the `sharing_info` Dropbox gives content of shared namespaces.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from localbox.domain import paths
from localbox.domain.errors import DomainError, WriteFailure
from localbox.domain.models import Entry, EntryKind
from localbox.domain.teams import NamespaceKind
from localbox.services.access import can_access
from localbox.services.write_locks import namespace_of
from localbox.stores.base import MetadataStore, MetadataTx

if TYPE_CHECKING:
    from localbox.services.accounts import Caller


@dataclass(frozen=True, slots=True)
class Mount:
    """A member home or team folder as it appears in the team root namespace."""

    namespace_id: str  # the mounted namespace
    root_namespace_id: str  # the team root it is mounted in
    name: str
    kind: NamespaceKind

    @property
    def path_lower(self) -> str:
        return "/" + paths.lower(self.name)

    @property
    def path_display(self) -> str:
        return "/" + self.name

    @property
    def folder_id(self) -> str:
        return mount_folder_id(self.namespace_id)

    def entry(self) -> Entry:
        """The mount point as a folder of the team root (it has no row of its own)."""
        return mount_point_entry(self.root_namespace_id, self.namespace_id, self.name)


def mount_point_entry(root_namespace_id: str, namespace_id: str, name: str,
                      kind: EntryKind = EntryKind.FOLDER) -> Entry:
    """The point folder of the mount of `namespace_id` called `name` in a team root, or (DELETED) the
    marker that reports it gone from a listing."""
    return Entry(namespace_id=root_namespace_id, path_lower="/" + paths.lower(name), path_display="/" + name,
                 name=name, kind=kind, id=mount_folder_id(namespace_id) if kind == EntryKind.FOLDER else "", seq=0)


def mount_folder_id(namespace_id: str) -> str:
    """A mount point's folder id: stable, and shaped like every other id ("id:" + 22 characters)."""
    digest = hashlib.sha256(b"localbox-mount:" + namespace_id.encode()).digest()
    return "id:" + base64.urlsafe_b64encode(digest).decode()[:22]


def team_root_tx(tx: MetadataTx, namespace_id: str) -> str | None:
    """The team id when `namespace_id` is a team root namespace."""
    space = tx.get_team_namespace(namespace_id)
    return space.team_id if space is not None and space.kind == NamespaceKind.ROOT else None


def mounts_tx(tx: MetadataTx, caller: Caller, root_namespace_id: str, name: str | None = None) -> list[Mount]:
    """The mounts of a team root that `caller` may see, by name (none when it is no team root); only
    those called `name` (case-insensitively) when given, so that resolving one path checks access
    to its candidates alone, not to every namespace of the team."""
    team_id = team_root_tx(tx, root_namespace_id)
    if team_id is None:
        return []
    wanted = None if name is None else "/" + paths.lower(name)
    out: list[Mount] = []
    after = ""
    while True:
        page = tx.list_team_namespaces(team_id, after=after, limit=1000)
        named = (Mount(s.namespace_id, root_namespace_id, s.name, s.kind) for s in page if s.kind != NamespaceKind.ROOT)
        out += [m for m in named
                if (wanted is None or m.path_lower == wanted) and can_access(tx, caller, m.namespace_id)]
        if len(page) < 1000:
            break
        after = page[-1].namespace_id
    out.sort(key=lambda m: (m.path_lower, m.namespace_id))
    # Two mounts of one name (two members called alike): the first keeps it, the other stays
    # reachable through its namespace id only.
    unique: dict[str, Mount] = {}
    for m in out:
        unique.setdefault(m.path_lower, m)
    return list(unique.values())


def _mount_named(tx: MetadataTx, caller: Caller, root_namespace_id: str, name: str) -> Mount | None:
    found = mounts_tx(tx, caller, root_namespace_id, name)
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Located:
    """Where a path points: a namespace and the names within it, and the mount it went through."""

    namespace_id: str
    names: tuple[str, ...]
    mount: Mount | None = None

    @property
    def is_mount_point(self) -> bool:
        return self.mount is not None and not self.names


def locate_tx(tx: MetadataTx, caller: Caller, ref: paths.PathRef, error: type[DomainError]) -> Located:
    """The namespace and names a parsed plain or `ns:` path addresses for `caller`.  Raises `error`
    no_write_permission (writes) / not_found (reads) for an `ns:` namespace the caller may not use."""
    base = ref.namespace_id or caller.namespace_id
    if ref.namespace_id is not None and not can_access(tx, caller, base):
        raise error("no_write_permission") if error is WriteFailure else error("not_found")
    # An account's own namespace is never a team root: the common case costs no lookup.
    if ref.names and base != caller.account.root_namespace_id:
        mount = _mount_named(tx, caller, base, ref.names[0])
        if mount is not None:
            return Located(mount.namespace_id, ref.names[1:], mount)
    return Located(base, ref.names)


def mount_by_id_tx(tx: MetadataTx, caller: Caller, folder_id: str) -> Mount | None:
    """The mount point an `id:` names, among the mounts of the caller's team root."""
    member = tx.team_member_of_account(caller.account.account_id)
    team = tx.get_team(member.team_id) if member is not None and member.active else None
    if team is None:
        return None
    return next((m for m in mounts_tx(tx, caller, team.root_namespace_id) if m.folder_id == folder_id), None)


def mount_points_tx(tx: MetadataTx, caller: Caller, namespace_id: str) -> list[Entry]:
    """The mount point folders that a listing of the root of `namespace_id` shows."""
    if namespace_id == caller.account.root_namespace_id:
        return []
    return [m.entry() for m in mounts_tx(tx, caller, namespace_id)]


def write_namespaces_tx(tx: MetadataTx, caller: Caller, entry_paths: Iterable[str]) -> list[str]:
    """The namespace each write path addresses, mounts followed (for the namespace write locks).  A
    path that does not parse, or an `id:`/`rev:` reference, counts as the caller's namespace; the
    transaction that then runs checks it properly."""
    out: list[str] = []
    for path in entry_paths:
        try:
            ref = paths.parse(path, for_write=True)
        except DomainError:
            out.append(caller.namespace_id)
            continue
        if ref.file_id is not None or ref.rev is not None:
            out.append(caller.namespace_id)
            continue
        try:
            out.append(locate_tx(tx, caller, ref, WriteFailure).namespace_id)
        except DomainError:
            out.append(ref.namespace_id or caller.namespace_id)
    return out


def needs_lookup(caller: Caller, entry_paths: Iterable[str]) -> bool:
    """Whether a path may go through a mount: only paths outside the caller's own namespace can."""
    home = caller.account.root_namespace_id
    if caller.namespace_id != home:
        return True
    return any(p.startswith("ns:") and not p.startswith(f"ns:{home}/") and p != f"ns:{home}" for p in entry_paths)


async def write_namespaces(store: MetadataStore, caller: Caller, entry_paths: list[str]) -> list[str]:
    """`write_namespaces_tx` in a read of its own, skipped when no path can go through a mount."""
    if not needs_lookup(caller, entry_paths):
        return [namespace_of(caller.namespace_id, p) for p in entry_paths]
    return await store.read(lambda tx: write_namespaces_tx(tx, caller, entry_paths))


# -- presentation -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sharing:
    """What FileMetadata / FolderMetadata say of shared namespaces (FileSharingInfo / FolderSharingInfo)."""

    parent_shared_folder_id: str | None
    shared_folder_id: str | None = None


@dataclass(frozen=True, slots=True)
class TeamView:
    """The team root as a caller whose path root it is sees it: which namespaces are mounted where."""

    root_namespace_id: str
    mounts: tuple[Mount, ...]
    _by_ns: dict[str, Mount] = field(default_factory=dict, compare=False)
    _by_id: dict[str, Mount] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._by_ns.update({m.namespace_id: m for m in self.mounts})
        self._by_id.update({m.folder_id: m for m in self.mounts})

    def present(self, e: Entry) -> tuple[Entry, Sharing | None]:
        """The entry with its path as seen from the team root, and its sharing info."""
        if e.namespace_id == self.root_namespace_id:
            point = self._by_id.get(e.id)
            if point is not None and e.seq == 0:
                return e, Sharing(self.root_namespace_id, point.namespace_id)
            return e, Sharing(self.root_namespace_id)
        mount = self._by_ns.get(e.namespace_id)
        if mount is None:
            return e, None
        return replace(e, path_lower=mount.path_lower + e.path_lower,
                       path_display=mount.path_display + e.path_display), Sharing(e.namespace_id)


async def team_view(store: MetadataStore, caller: Caller) -> TeamView | None:
    """The caller's view of the team root, when its path root is one (None otherwise: no lookup for
    a caller in its own namespace)."""
    if caller.namespace_id == caller.account.root_namespace_id:
        return None

    def _view(tx: MetadataTx) -> TeamView | None:
        if team_root_tx(tx, caller.namespace_id) is None:
            return None
        return TeamView(caller.namespace_id, tuple(mounts_tx(tx, caller, caller.namespace_id)))

    return await store.read(_view)
