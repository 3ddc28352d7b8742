"""Domain values -> the SDK's wire types, and domain errors -> each route's error union."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from localbox.domain.errors import DomainError, Family
from localbox.domain.models import Entry, EntryKind
from localbox.services.mounts import Sharing, TeamView
from localbox.services.search import SearchPage
from localbox.spec import build_union, files

Nester = Callable[[DomainError], tuple[tuple[str, ...], dict[str, Any]]]

# The team space view of the call being answered (set by the endpoint when the caller's path root is
# a team root): every Entry this module turns into metadata is shown through it, so paths inside a
# mounted namespace read "/Marketing/a.txt" and shared content carries its sharing_info, whichever
# route produced the entry.
VIEW: contextvars.ContextVar[TeamView | None] = contextvars.ContextVar("localbox_team_view", default=None)


def _seen(e: Entry) -> tuple[Entry, Sharing | None]:
    view = VIEW.get()
    return (e, None) if view is None else view.present(e)


def _sharing_json(kind: EntryKind, sharing: Sharing) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sharing.parent_shared_folder_id is not None:
        out["parent_shared_folder_id"] = sharing.parent_shared_folder_id
    if kind == EntryKind.FILE:
        return {**out, "sharing_info": {"read_only": False, **out}}
    if kind == EntryKind.DELETED:
        return out
    info = {"read_only": False, **out}
    if sharing.shared_folder_id is not None:
        out["shared_folder_id"] = info["shared_folder_id"] = sharing.shared_folder_id
    return {**out, "sharing_info": {**info, "traverse_only": False, "no_access": False}}


def _sharing_stone(kind: EntryKind, sharing: Sharing | None) -> dict[str, Any]:
    if sharing is None:
        return {}
    parent = sharing.parent_shared_folder_id
    if kind == EntryKind.FILE:
        return {"parent_shared_folder_id": parent,
                "sharing_info": files.FileSharingInfo(read_only=False, parent_shared_folder_id=parent)}
    if kind == EntryKind.DELETED:
        return {"parent_shared_folder_id": parent}
    return {"parent_shared_folder_id": parent, "shared_folder_id": sharing.shared_folder_id,
            "sharing_info": files.FolderSharingInfo(read_only=False, parent_shared_folder_id=parent,
                                                    shared_folder_id=sharing.shared_folder_id,
                                                    traverse_only=False, no_access=False)}


class _Timestamp(datetime):
    """A datetime whose `%Y` is always four digits.  stone encodes timestamps with `strftime`, and glibc
    writes year 1 as "1": a client_modified of "0001-01-01T00:00:00Z" came back as "1-01-01T00:00:00Z",
    which every SDK refuses to decode (its format wants four digits)."""

    def strftime(self, fmt: str) -> str:
        return super().strftime(fmt.replace("%Y", f"{self.year:04d}"))


def timestamp(ts: float) -> datetime:
    # The SDK wants naive UTC, second precision ("%Y-%m-%dT%H:%M:%SZ").
    t = datetime.fromtimestamp(int(ts), UTC)
    return _Timestamp(t.year, t.month, t.day, t.hour, t.minute, t.second)


def file_metadata(e: Entry) -> Any:
    e, sharing = _seen(e)
    return files.FileMetadata(
        name=e.name, id=e.id, client_modified=timestamp(e.client_modified),
        server_modified=timestamp(e.server_modified), rev=e.rev, size=e.size, path_lower=e.path_lower,
        path_display=e.path_display, is_downloadable=True, content_hash=e.content_hash,
        **_sharing_stone(EntryKind.FILE, sharing),
    )


def _stamp(ts: float) -> str:
    t = time.gmtime(int(ts))
    return f"{t.tm_year:04d}" + time.strftime("-%m-%dT%H:%M:%SZ", t)  # four-digit year, as timestamp()


def file_metadata_json(e: Entry) -> dict[str, Any]:
    """The JSON stone emits for `file_metadata(e)`, built directly: batch results carry up to 1000 of
    these and stone's generic encoder costs ~0.1 ms each.  tests/unit pins the two to each other."""
    e, sharing = _seen(e)
    out = {
        "name": e.name, "path_lower": e.path_lower, "path_display": e.path_display, "id": e.id,
        "client_modified": _stamp(e.client_modified), "server_modified": _stamp(e.server_modified),
        "rev": e.rev, "size": e.size, "is_downloadable": True, "content_hash": e.content_hash,
    }
    return out if sharing is None else {**out, **_sharing_json(EntryKind.FILE, sharing)}


def metadata_json(e: Entry) -> dict[str, Any]:
    """The JSON stone emits for `metadata(e)` with the Metadata union's `.tag` (listings carry 2000)."""
    if e.kind == EntryKind.FILE:
        return {".tag": "file", **file_metadata_json(e)}
    e, sharing = _seen(e)
    base = {".tag": e.kind.value, "name": e.name, "path_lower": e.path_lower, "path_display": e.path_display}
    if e.kind == EntryKind.FOLDER:
        base["id"] = e.id
    return base if sharing is None else {**base, **_sharing_json(e.kind, sharing)}


def batch_entries_json(outcomes: Sequence[Entry | DomainError]) -> list[dict[str, Any]]:
    """UploadSessionFinishBatchResultEntry values, one per outcome, in order."""
    out: list[dict[str, Any]] = []
    for o in outcomes:
        if isinstance(o, DomainError):
            tags, payload = FINISH[o.family](o)
            out.append({".tag": "failure", "failure": build_union(files.UploadSessionFinishError_validator,
                                                                  tags, payload)})
        else:
            out.append({".tag": "success", **file_metadata_json(o)})
    return out


def metadata(e: Entry) -> Any:
    if e.kind == EntryKind.FILE:
        return file_metadata(e)
    e, sharing = _seen(e)
    extra = _sharing_stone(e.kind, sharing)
    if e.kind == EntryKind.FOLDER:
        return files.FolderMetadata(name=e.name, id=e.id, path_lower=e.path_lower, path_display=e.path_display,
                                    **extra)
    return files.DeletedMetadata(name=e.name, path_lower=e.path_lower, path_display=e.path_display, **extra)


def _prefix(*outer: str) -> Nester:
    return lambda err: ((*outer, *err.tags), err.payload)


def _upload_write_failed(err: DomainError) -> tuple[tuple[str, ...], dict[str, Any]]:
    # UploadError.path is a struct: {reason: WriteError, upload_session_id}.
    payload = dict(err.payload)
    session_id = payload.pop("upload_session_id", "")
    reason = build_union(files.WriteError_validator, err.tags, payload)
    return ("path",), {"reason": reason, "upload_session_id": session_id}


# How each route's error union wraps the families the services raise.
FINISH: dict[Family, Nester] = {Family.SESSION: _prefix("lookup_failed"), Family.WRITE: _prefix("path"),
                                Family.CALL: _prefix()}
_DELETE: dict[Family, Nester] = {Family.LOOKUP: _prefix("path_lookup"), Family.WRITE: _prefix("path_write"),
                                 Family.CALL: _prefix()}
NESTING: dict[str, dict[Family, Nester]] = {
    "files/upload_session/start": {Family.CALL: _prefix()},
    "files/upload_session/append": {Family.SESSION: _prefix(), Family.CALL: _prefix()},
    "files/upload_session/append_v2": {Family.SESSION: _prefix(), Family.CALL: _prefix()},
    "files/upload_session/append_batch": {Family.CALL: _prefix()},
    "files/upload_session/finish": FINISH,
    "files/upload_session/finish_batch/check": {Family.POLL: _prefix()},
    "files/upload": {Family.WRITE: _upload_write_failed, Family.CALL: _prefix()},
    "files/get_metadata": {Family.LOOKUP: _prefix("path")},
    "files/download": {Family.LOOKUP: _prefix("path")},
    "files/list_folder": {Family.LOOKUP: _prefix("path")},
    "files/list_folder/continue": {Family.LOOKUP: _prefix("path"), Family.LIST_CONTINUE: _prefix()},
    "files/create_folder_v2": {Family.WRITE: _prefix("path")},
    "files/delete_v2": _DELETE,
    "files/move_v2": {Family.RELOCATION: _prefix()},
    "files/copy_v2": {Family.RELOCATION: _prefix()},
    "files/restore": {Family.LOOKUP: _prefix("path_lookup"), Family.WRITE: _prefix("path_write"),
                      Family.CALL: _prefix()},
    "files/list_revisions": {Family.LOOKUP: _prefix("path"), Family.CALL: _prefix()},
    "files/create_folder_batch/check": {Family.POLL: _prefix()},
    "files/delete_batch/check": {Family.POLL: _prefix()},
    "files/move_batch/check_v2": {Family.POLL: _prefix()},
    "files/copy_batch/check_v2": {Family.POLL: _prefix()},
    "users/get_account": {Family.CALL: _prefix()},
    "users/get_account_batch": {Family.CALL: _prefix()},
    "users/features/get_values": {Family.CALL: _prefix()},
    "files/list_folder/get_latest_cursor": {Family.LOOKUP: _prefix("path")},
    "files/list_folder/longpoll": {Family.CALL: _prefix()},
    "files/search_v2": {Family.LOOKUP: _prefix("path"), Family.CALL: _prefix()},
    "files/search/continue_v2": {Family.LOOKUP: _prefix("path"), Family.CALL: _prefix()},
    "team/members/list/continue_v2": {Family.CALL: _prefix()},
    "team/namespaces/list/continue": {Family.CALL: _prefix()},
    "team/features/get_values": {Family.CALL: _prefix()},
    "team/token/get_authenticated_admin": {Family.CALL: _prefix()},
}


class UnmappedError(Exception):
    """A service raised an error that the route's union cannot carry: a bug in localbox."""


def route_error_json(route: str, error_validator: Any, err: DomainError) -> tuple[str, Any]:
    """(error_summary, JSON-compatible error union) for a 409 response."""
    nest = NESTING.get(route, {}).get(err.family)
    if nest is None:
        raise UnmappedError(f"{route} cannot report {err.family}/{'/'.join(err.tags)}")
    tags, payload = nest(err)
    # The summary names the whole tag path, even where a struct member (UploadError.path) hides it.
    path = tags if tags[len(tags) - len(err.tags):] == err.tags else (*tags, *err.tags)
    return "/".join(path) + "/...", build_union(error_validator, tags, payload)


# -- results of the create_folder / delete / move / copy batches --------------------------------------
def _failure(validator: Any, nesting: dict[Family, Nester], err: DomainError) -> Any:
    nest = nesting.get(err.family)
    if nest is None:
        raise UnmappedError(f"a batch entry cannot report {err.family}/{'/'.join(err.tags)}")
    tags, payload = nest(err)
    return {".tag": "failure", "failure": build_union(validator, tags, payload)}


def _untagged(e: Entry) -> dict[str, Any]:
    out = metadata_json(e)
    del out[".tag"]
    return out


def create_folder_entries_json(outcomes: Sequence[Entry | DomainError]) -> list[dict[str, Any]]:
    """CreateFolderBatchResultEntry values (success carries a FolderMetadata struct, no tag)."""
    nesting = {Family.WRITE: _prefix("path")}
    return [_failure(files.CreateFolderEntryError_validator, nesting, o) if isinstance(o, DomainError)
            else {".tag": "success", "metadata": _untagged(o)} for o in outcomes]


def delete_entries_json(outcomes: Sequence[Entry | DomainError]) -> list[dict[str, Any]]:
    """DeleteBatchResultEntry values."""
    return [_failure(files.DeleteError_validator, _DELETE, o) if isinstance(o, DomainError)
            else {".tag": "success", "metadata": metadata_json(o)} for o in outcomes]


def relocation_entries_json(outcomes: Sequence[Entry | DomainError]) -> list[dict[str, Any]]:
    """RelocationBatchResultEntry values."""
    nesting = {Family.RELOCATION: _prefix("relocation_error"), Family.CALL: _prefix()}  # too_many_write_operations
    return [_failure(files.RelocationBatchErrorEntry_validator, nesting, o) if isinstance(o, DomainError)
            else {".tag": "success", "success": metadata_json(o)} for o in outcomes]


# -- search_v2 ----------------------------------------------------------------------------------------
def search_result_json(page: SearchPage) -> dict[str, Any]:
    """The JSON stone emits for SearchV2Result (tests/unit pins the two to each other): a page holds
    up to 1000 matches, each a Metadata inside MetadataV2."""
    matches: list[dict[str, Any]] = []
    for m in page.matches:
        match: dict[str, Any] = {"metadata": {".tag": "metadata", "metadata": metadata_json(m.entry)},
                                 "match_type": {".tag": "filename"}}
        if m.spans is not None:
            match["highlight_spans"] = [{"highlight_str": text, "is_highlighted": hit} for text, hit in m.spans]
        matches.append(match)
    out: dict[str, Any] = {"matches": matches, "has_more": page.has_more}
    if page.cursor is not None:
        out["cursor"] = page.cursor
    return out
