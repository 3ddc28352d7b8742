"""Plain domain values shared by services and stores (no I/O, no wire types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SessionType(StrEnum):
    SEQUENTIAL = "sequential"
    CONCURRENT = "concurrent"


class SessionState(StrEnum):
    OPEN = "open"
    COMMITTED = "committed"


class EntryKind(StrEnum):
    FILE = "file"
    FOLDER = "folder"
    DELETED = "deleted"


class JobState(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"  # could not run at all (nothing committed); polls answer internal_error


@dataclass(slots=True)
class Account:
    account_id: str
    email: str
    given_name: str
    surname: str
    root_namespace_id: str
    created: float
    quota: int | None = None  # bytes this account may use; None: the server's default allocation


@dataclass(frozen=True, slots=True)
class Token:
    """A stored access token.  The secret itself is never stored: only its SHA-256."""

    token_hash: str  # hex SHA-256 of the secret
    account_id: str
    scopes: frozenset[str]
    created: float = 0.0
    prefix: str = ""  # the secret's first characters, so that `token list` lets a person recognise it

    @property
    def token_id(self) -> str:
        """A short public handle (`token list`, `token revoke`) that reveals nothing of the secret."""
        return self.token_hash[:16]


@dataclass(slots=True)
class UploadSession:
    session_id: str
    account_id: str
    session_type: SessionType
    offset: int  # sequential: bytes received; concurrent: end of data once closed
    closed: bool
    created: float
    expires: float
    blocks: list[bytes] = field(default_factory=list)  # sequential: digests of stored blocks, in order
    state: SessionState = SessionState.OPEN


@dataclass(frozen=True, slots=True)
class Piece:
    """One append of a concurrent session: `length` bytes at `offset`, stored as `blocks`."""

    offset: int
    length: int
    blocks: tuple[bytes, ...]


@dataclass(slots=True)
class Entry:
    """A file, folder or deletion marker in a namespace, keyed by (namespace_id, path_lower)."""

    namespace_id: str
    path_lower: str
    path_display: str
    name: str
    kind: EntryKind
    id: str
    seq: int
    rev: str = ""
    size: int = 0
    content_hash: str = ""
    blocks: list[bytes] = field(default_factory=list)
    client_modified: float = 0.0
    server_modified: float = 0.0

    @property
    def parent_lower(self) -> str:
        return self.path_lower.rsplit("/", 1)[0]


@dataclass(slots=True)
class Job:
    job_id: str
    account_id: str
    kind: str
    state: JobState
    created: float
    request: str  # JSON written by the service that launched the job
    result: str | None = None
    completed: float | None = None
    run_after: float | None = None  # held back until then (a job_stuck fault); runs in order otherwise
