"""Domain errors.  Each carries the Dropbox union tag path within its *family*; no HTTP here.

A family is one Dropbox error union that the services can produce.  The HTTP edge nests a family
under the wrapper tag of the route being served (e.g. a session lookup failure becomes
`lookup_failed/<tag>` on `upload_session/finish`), and encodes it with the route's stone type.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Family(StrEnum):
    SESSION = "session"  # UploadSessionLookupError
    WRITE = "write"  # WriteError
    LOOKUP = "lookup"  # LookupError (reading a path)
    CALL = "call"  # tags at the top level of the route's own error union
    POLL = "poll"  # async.PollError
    LIST_CONTINUE = "list_continue"  # ListFolderContinueError (non-path tags)
    RELOCATION = "relocation"  # RelocationError, tags from its top level (from_lookup/..., to/..., ...)


class DomainError(Exception):
    family: Family = Family.CALL

    def __init__(self, *tags: str, payload: Mapping[str, Any] | None = None) -> None:
        super().__init__("/".join(tags))
        self.tags: tuple[str, ...] = tags
        self.payload: dict[str, Any] = dict(payload or {})

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family.value, "tags": list(self.tags), "payload": self.payload}

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> DomainError:
        cls = _BY_FAMILY[Family(obj["family"])]
        return cls(*obj["tags"], payload=obj.get("payload"))


class SessionLookupError(DomainError):
    """Dropbox UploadSessionLookupError."""

    family = Family.SESSION


class WriteFailure(DomainError):
    """Dropbox WriteError."""

    family = Family.WRITE


class PathLookupError(DomainError):
    """Dropbox LookupError."""

    family = Family.LOOKUP


class CallError(DomainError):
    """A tag of the route's own error union (content_hash_mismatch, payload_too_large, ...)."""

    family = Family.CALL


class PollFailure(DomainError):
    """Dropbox async.PollError."""

    family = Family.POLL


class ListContinueError(DomainError):
    family = Family.LIST_CONTINUE


class RelocationFailure(DomainError):
    """Dropbox RelocationError: a move or copy names which side failed (`from_lookup`, `to`, ...)."""

    family = Family.RELOCATION

    @staticmethod
    def wrap(side: str, err: DomainError) -> RelocationFailure:
        return RelocationFailure(side, *err.tags, payload=err.payload)


class StoreUnavailable(Exception):
    """A backend cannot serve right now (disk full, database locked too long...).  Retryable: the edge
    answers 503 with Retry-After, which Dropbox clients retry."""


class BadRequest(Exception):
    """Input that Dropbox answers with a 400 plain-text message (not a route error)."""


class AuthFailure(Exception):
    """401: the token is unknown, or lacks a scope."""

    def __init__(self, tag: str, required_scope: str | None = None) -> None:
        super().__init__(tag)
        self.tag = tag
        self.required_scope = required_scope


class PathRootFailure(Exception):
    """422 on Dropbox-API-Path-Root: `invalid_root` (with the user's root info) or `no_permission`."""

    def __init__(self, tag: str, root_namespace_id: str = "", home_namespace_id: str = "",
                 home_path: str | None = None) -> None:
        super().__init__(tag)
        self.tag = tag
        self.root_namespace_id = root_namespace_id
        self.home_namespace_id = home_namespace_id
        self.home_path = home_path  # set for a team member: the root info is then TeamRootInfo


class RateLimited(Exception):
    """429: `too_many_requests` (a token over its rate limit) or `too_many_write_operations` (a
    namespace busy with other writes for longer than the bounded wait); retry after `retry_after` s."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def incorrect_offset(correct_offset: int) -> SessionLookupError:
    return SessionLookupError("incorrect_offset", payload={"correct_offset": correct_offset})


def conflict(kind: str) -> WriteFailure:
    return WriteFailure("conflict", kind)


_BY_FAMILY: dict[Family, type[DomainError]] = {
    Family.SESSION: SessionLookupError,
    Family.WRITE: WriteFailure,
    Family.LOOKUP: PathLookupError,
    Family.CALL: CallError,
    Family.POLL: PollFailure,
    Family.LIST_CONTINUE: ListContinueError,
    Family.RELOCATION: RelocationFailure,
}
