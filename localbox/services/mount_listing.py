"""Recursive listings of the team root: they descend into the mounts the caller sees.

In Dropbox a recursive `list_folder("")` at the team root lists the content of every mounted folder
(the caller's home, the team folders; every home for an admin acting on the whole team) under its
mount path, and the cursor follows all of them.  Each mounted namespace keeps its own change
counter, so such a cursor (`TeamCursor`) holds one position per namespace (`Part`): the team root
itself first, then each mount.  Pages walk the parts in that order, a mount's point folder before
its content, so parents always come before their children.

The set of mounts is the caller's and can change (a member joins a team folder, an admin's view):
every continue compares the cursor's mounts with those the caller sees now.  A new one is listed
from scratch (its point folder, then its content, as adds); one gone is reported as a deletion of
its point folder.  list_folder/longpoll has no caller, so it watches the cursor's namespaces only:
a mount that appears later shows up at the next continue.

Cursors of any other listing stay `files.ListCursor`, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from localbox.domain import paths
from localbox.domain.errors import BadRequest, CallError
from localbox.domain.models import Entry, EntryKind
from localbox.services.access import can_access
from localbox.services.cursors import seal, unseal
from localbox.services.mounts import Mount, mount_point_entry, mounts_tx, team_root_tx
from localbox.stores.base import MetadataTx

if TYPE_CHECKING:
    from localbox.services.accounts import Caller

KIND = "AAT"  # the seal kind of a team root cursor (a plain listing's is "AAH")


@dataclass(frozen=True, slots=True)
class Part:
    """One namespace of a team root cursor and the cursor's position in it."""

    namespace_id: str
    name: str  # the mount's name in the team root; "" for the team root itself
    since: int  # -1: not listed yet (a first listing); else changes after this seq
    upto: int | None  # the snapshot of the page set being read; None between page sets


@dataclass(frozen=True, slots=True)
class TeamCursor:
    root: str  # the team root namespace
    include_deleted: bool
    limit: int
    parts: tuple[Part, ...]
    at: int  # the part the next page starts in
    after: str | None  # where the last page ended in it (path_lower or seq); None: the part is not begun

    def encode(self, key: bytes) -> str:
        raw = json.dumps([self.root, self.include_deleted, self.limit,
                          [[p.namespace_id, p.name, p.since, p.upto] for p in self.parts], self.at, self.after],
                         separators=(",", ":")).encode()
        return seal(KIND, key, raw)

    @staticmethod
    def decode(text: str, key: bytes) -> TeamCursor:
        try:
            root, inc, limit, parts, at, after = json.loads(unseal(KIND, key, text))
            held = tuple(Part(str(n), str(m), int(s), None if u is None else int(u)) for n, m, s, u in parts)
            c = TeamCursor(str(root), bool(inc), int(limit), held, int(at), None if after is None else str(after))
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            raise BadRequest('Invalid "cursor" parameter') from e
        if not c.parts or c.parts[0].namespace_id != c.root or not 0 <= c.at <= len(c.parts) or c.limit < 1:
            raise BadRequest('Invalid "cursor" parameter')
        return c

    @property
    def paging(self) -> bool:
        return any(p.upto is not None for p in self.parts)


def is_team_cursor(text: str) -> bool:
    return text.startswith(KIND)


def descends_tx(tx: MetadataTx, caller: Caller, namespace_id: str, base: str, recursive: bool) -> bool:
    """Whether a listing of (namespace_id, base) is a recursive one of the team root that is the
    caller's path root (only then are its mounts shown under their mount paths)."""
    return (recursive and not base and namespace_id == caller.namespace_id
            and namespace_id != caller.account.root_namespace_id and team_root_tx(tx, namespace_id) is not None)


def _parts(tx: MetadataTx, root: str, mounts: Iterable[Mount], since: int | None) -> tuple[Part, ...]:
    """Parts for the team root and `mounts`: a first listing (since None) or a position at "now"."""
    listed = [("", root), *((m.name, m.namespace_id) for m in mounts)]
    seqs = tx.namespace_seqs([ns for _, ns in listed])
    return tuple(Part(ns, name, -1 if since is None else seqs.get(ns, 0), seqs.get(ns, 0) if since is None else None)
                 for name, ns in listed)


def start_tx(tx: MetadataTx, caller: Caller, include_deleted: bool, limit: int, key: bytes,
             ) -> tuple[list[Entry], str, bool]:
    """The first page of a recursive listing of the caller's team root: (entries, cursor, has_more)."""
    c = TeamCursor(caller.namespace_id, include_deleted, limit,
                   _parts(tx, caller.namespace_id, mounts_tx(tx, caller, caller.namespace_id), None), 0, None)
    return _page(tx, c, [], key)


def latest_tx(tx: MetadataTx, caller: Caller, include_deleted: bool, limit: int, key: bytes) -> str:
    """A cursor at "now" for every namespace such a listing covers."""
    parts = _parts(tx, caller.namespace_id, mounts_tx(tx, caller, caller.namespace_id), 0)
    return TeamCursor(caller.namespace_id, include_deleted, limit, parts, 0, None).encode(key)


def continue_tx(tx: MetadataTx, caller: Caller, c: TeamCursor, key: bytes) -> tuple[list[Entry], str, bool]:
    """The next page: the rest of a page set, or the changes since the cursor in every namespace,
    with the mounts the caller has gained or lost since."""
    if c.root != caller.namespace_id or not can_access(tx, caller, c.root):
        raise BadRequest('Invalid "cursor" parameter')
    visible = {m.namespace_id: m for m in mounts_tx(tx, caller, c.root)}
    known = {p.namespace_id for p in c.parts}
    seqs = tx.namespace_seqs([c.root, *known, *visible])
    if c.root not in seqs:
        raise BadRequest('Invalid "cursor" parameter')
    gone: list[Entry] = []
    kept: list[Part] = []
    at, after = 0, c.after
    current = c.parts[c.at].namespace_id if c.at < len(c.parts) else None
    for i, p in enumerate(c.parts):
        if p.name and (p.namespace_id not in visible or p.namespace_id not in seqs):
            gone.append(mount_point_entry(c.root, p.namespace_id, p.name, EntryKind.DELETED))
            if p.namespace_id == current:
                after = None  # the next part starts from its beginning
            continue
        at += i < c.at
        kept.append(p)
    kept += [Part(m.namespace_id, m.name, -1, seqs[m.namespace_id])
             for ns, m in visible.items() if ns not in known]
    # Between page sets every part takes "now" as the snapshot of the next one.
    kept = [p if p.upto is not None else replace(p, upto=seqs[p.namespace_id]) for p in kept]
    return _page(tx, TeamCursor(c.root, c.include_deleted, c.limit, tuple(kept), at, after), gone, key)


def _page(tx: MetadataTx, c: TeamCursor, head: list[Entry], key: bytes) -> tuple[list[Entry], str, bool]:
    out = list(head)
    room = max(c.limit - len(head), 1)
    # A mount hides whatever of its name the team root namespace itself holds (as path lookups do).
    hidden = {"/" + paths.lower(p.name) for p in c.parts if p.name}
    at, after = c.at, c.after
    more = False
    while at < len(c.parts):
        if room <= 0:
            more = True
            break
        p = c.parts[at]
        assert p.upto is not None
        if after is None:
            after = ""
            if p.since < 0 and p.name:
                out.append(mount_point_entry(c.root, p.namespace_id, p.name))
                room -= 1
                continue
        if p.since < 0:
            rows = tx.list_entries(p.namespace_id, "", recursive=True, after=after, limit=room + 1,
                                   max_seq=p.upto, live_only=not c.include_deleted)
        else:
            rows = tx.list_changes(p.namespace_id, "", recursive=True, since=int(after) if after else p.since,
                                   upto=p.upto, limit=room + 1)
        full = len(rows) > room
        rows = rows[:room]
        if full:
            after = rows[-1].path_lower if p.since < 0 else str(rows[-1].seq)
        room -= len(rows)
        if not p.name:
            rows = [r for r in rows if "/" + r.path_lower.split("/", 2)[1] not in hidden]
        out += rows
        if full:
            more = True
            break
        at, after = at + 1, None
    if more:
        nxt = replace(c, at=at, after=after)
    else:
        parts = tuple(Part(p.namespace_id, p.name, p.upto if p.upto is not None else p.since, None) for p in c.parts)
        nxt = TeamCursor(c.root, c.include_deleted, c.limit, parts, 0, None)
    return out, nxt.encode(key), more


# -- list_folder/longpoll -------------------------------------------------------------------------
def look_tx(tx: MetadataTx, c: TeamCursor) -> tuple[bool, dict[str, int]]:
    """Whether anything changed in the cursor's namespaces after it, and their counters now."""
    seqs = tx.namespace_seqs([p.namespace_id for p in c.parts])
    if c.root not in seqs:
        raise CallError("reset")
    for p in c.parts:
        seq = seqs.get(p.namespace_id)
        if seq is None:
            return True, seqs  # a mounted namespace went: continue reports its point folder deleted
        if seq > p.since and tx.list_changes(p.namespace_id, "", recursive=True, since=p.since, upto=seq, limit=1):
            return True, seqs
    return False, seqs
