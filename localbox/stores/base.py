"""Storage interfaces.  The services depend on these Protocols only; backends implement them.

Ordering rule between the two stores: file bytes are made durable in the BlobStore first (as
immutable blocks named by their SHA-256), then the metadata that references them is committed in
one MetadataStore transaction.  A crash in between leaves only unreferenced blocks behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from localbox.domain.errors import StoreUnavailable
from localbox.domain.models import Account, Entry, Job, Piece, SessionState, Token, UploadSession
from localbox.domain.teams import Team, TeamMember, TeamNamespace, TeamToken, TransportUsage

T = TypeVar("T")
__all__ = ["BlobStore", "BodyTooLarge", "MetadataStore", "MetadataTx", "StagedAppend", "StoreUnavailable"]


class MetadataTx(Protocol):
    """One metadata transaction.  Methods are synchronous: a transaction runs on the store's own
    worker, so it never interleaves with another transaction of the same store."""

    # -- accounts and tokens
    def insert_account(self, account: Account) -> None: ...
    def get_account(self, account_id: str) -> Account | None: ...
    def get_account_by_email(self, email: str) -> Account | None: ...
    def insert_token(self, token: Token) -> None: ...
    def get_token(self, token_hash: str) -> Token | None:
        """The token whose secret has this SHA-256 (hex); tokens are looked up only by hash."""
        ...
    def list_tokens(self, account_id: str) -> list[Token]:
        """The account's tokens, oldest first."""
        ...
    def delete_token(self, token_hash: str) -> bool:
        """Revoke a token; False when there was none."""
        ...
    def insert_namespace(self, namespace_id: str, owner_account_id: str) -> None: ...
    def namespace_owner(self, namespace_id: str) -> str | None: ...
    def next_seq(self, namespace_id: str) -> int:
        """Advance and return the namespace's change counter (one per write)."""
        ...
    def advance_seq(self, namespace_id: str, count: int) -> int:
        """Advance the namespace's change counter by `count` and return its new value (the last of the
        `count` seqs a writer holding the namespace handed out after reading current_seq)."""
        ...

    # -- upload sessions
    def insert_session(self, session: UploadSession) -> None: ...
    def get_session(self, session_id: str) -> UploadSession | None: ...
    def get_sessions(self, session_ids: Collection[str]) -> dict[str, UploadSession]:
        """The sessions among `session_ids` that exist, by id (one read for all; in a write transaction
        they are locked as get_session locks one)."""
        ...
    def update_session(self, session: UploadSession, expected_offset: int) -> bool:
        """Compare-and-set: store `session` only if the stored offset is still `expected_offset`."""
        ...
    def delete_expired_sessions(self, now: float, limit: int) -> list[str]:
        """Forget up to `limit` sessions that expired before `now` (and their pieces); returns their ids."""
        ...
    def mark_session(self, session_id: str, state: SessionState) -> None:
        """Set a session's state (and seal it) without rewriting its block list."""
        ...
    def mark_sessions(self, session_ids: Collection[str], state: SessionState) -> None:
        """mark_session for several sessions at once."""
        ...
    def insert_piece(self, session_id: str, piece: Piece) -> None: ...
    def list_pieces(self, session_id: str) -> list[Piece]: ...

    # -- entries
    def get_entry(self, namespace_id: str, path_lower: str) -> Entry | None: ...
    def get_entries(self, namespace_id: str, path_lowers: Collection[str]) -> dict[str, Entry]:
        """The entries (deletion markers included) at those paths of one namespace that exist, by
        path_lower: get_entry for many paths in one read."""
        ...
    def get_entry_by_id(self, file_id: str) -> Entry | None: ...
    def get_entry_by_rev(self, rev: str) -> Entry | None:
        """The file version with revision `rev`: the current one, or one kept by keep_revision."""
        ...
    def keep_revision(self, entry: Entry) -> None:
        """Remember a file version that is about to be replaced, so `rev:` paths still find it."""
        ...
    def keep_revisions(self, entries: Sequence[Entry]) -> None:
        """keep_revision for several versions at once."""
        ...
    def list_revisions(
        self, *, namespace_id: str | None = None, path_lower: str | None = None, file_id: str | None = None,
        before_seq: int | None = None, limit: int,
    ) -> list[Entry]:
        """Versions kept by keep_revision, newest first: those of one file id, or those once at one path;
        only those with seq < before_seq when given."""
        ...
    def put_entry(self, entry: Entry) -> None:
        """Insert or replace the entry at (namespace_id, path_lower), keeping the namespace's byte count."""
        ...
    def put_entries(self, entries: Sequence[Entry]) -> None:
        """put_entry for each of `entries` in order (a later one at the same path replaces an earlier
        one), in a few statements."""
        ...
    def list_entries(
        self, namespace_id: str, parent_lower: str, *, recursive: bool, after: str, limit: int,
        max_seq: int | None = None, min_seq: int | None = None, live_only: bool = False,
    ) -> list[Entry]:
        """Entries strictly below `parent_lower` (children only unless recursive), ordered by path_lower,
        with path_lower > `after`, optionally restricted to min_seq < seq <= max_seq, and without
        deletion markers when `live_only`."""
        ...
    def list_changes(
        self, namespace_id: str, parent_lower: str, *, recursive: bool, since: int, upto: int, limit: int,
    ) -> list[Entry]:
        """Entries strictly below `parent_lower` (children only unless recursive) with since < seq <= upto,
        deletion markers included, in change order (seq ascending)."""
        ...
    def current_seq(self, namespace_id: str) -> int: ...
    def bytes_used(self, account_id: str) -> int:
        """Total size of the live files in the namespaces the account owns."""
        ...

    # -- garbage collection
    def referenced_blocks(self) -> set[bytes]:
        """Every block digest that live files, kept revisions and open upload sessions refer to."""
        ...
    def open_session_ids(self) -> set[str]:
        """Ids of the upload sessions not yet committed (their staged bytes are live)."""
        ...
    def count_open_sessions(self, account_id: str, now: float) -> int:
        """Upload sessions of the account neither committed nor expired at `now` (per-account limit)."""
        ...
    def count_pending_jobs(self, account_id: str) -> int:
        """Jobs of the account not yet complete or failed (per-account limit)."""
        ...
    def expire_revisions(self, superseded_before: float) -> int:
        """Forget kept versions that stopped being current (replaced or deleted) before the given
        time; returns how many went."""
        ...

    # -- jobs
    def insert_job(self, job: Job) -> None: ...
    def get_job(self, job_id: str) -> Job | None: ...
    def complete_job(self, job_id: str, result: str, completed: float) -> None: ...
    def fail_job(self, job_id: str, completed: float) -> None:
        """Mark a pending job as failed without a result."""
        ...
    def pending_jobs(self) -> list[Job]: ...
    def delete_jobs_before(self, completed_before: float) -> int: ...

    # -- leases: any node serves any request (#5)
    def lock_session(self, session_id: str, owner: str, now: float, until: float) -> bool:
        """Take or renew the append lease of a session's staged bytes: True if it was free, had lapsed
        (lock_until < now) or was already `owner`'s; False while another owner holds it."""
        ...
    def unlock_session(self, session_id: str, owner: str) -> None: ...
    def claim_job(self, owner: str, now: float, until: float) -> Job | None:
        """Lease the oldest runnable job to `owner` until `until`: pending, not held back (run_after >
        now), not leased to a live owner, and first among its account's runnable pending jobs, so that
        each account's batches run one at a time in arrival order whichever node runs them."""
        ...
    def renew_job(self, job_id: str, owner: str, until: float) -> bool:
        """Extend `owner`'s lease; False if the job is no longer pending under that owner."""
        ...
    def hold_job(self, job_id: str, owner: str) -> bool:
        """In the transaction that commits a job: lock its row and tell whether `owner` still holds it
        pending.  A node whose lease lapsed (and was taken over) must not commit."""
        ...
    def release_job(self, job_id: str, owner: str, run_after: float | None) -> None:
        """Give the job back (runnable by anyone from `run_after` on)."""
        ...
    def release_leases(self) -> int:
        """Forget every job lease (a store one node owns, as that node starts); returns how many."""
        ...
    def pending_before(self, account_id: str, created: float, now: float) -> bool:
        """Whether the account has a runnable pending job created at or before `created`."""
        ...

    # -- change feeds and search
    def namespace_seqs(self, namespace_ids: Sequence[str]) -> dict[str, int]:
        """The change counter of each namespace that exists among `namespace_ids` (one read for all)."""
        ...
    def search_entries(
        self, namespace_id: str, under_lower: str, terms: Sequence[str], kinds: Sequence[NameFilter], *,
        by_relevance: bool, after: SearchKey | None, limit: int,
    ) -> list[tuple[Entry, SearchKey]]:
        """Entries strictly below `under_lower` ("" = the whole namespace) whose name (last path
        component, lower-cased) contains every one of `terms` (already lower-cased) and that pass one
        of `kinds`, each with its sort key, in key order, only keys > `after`, at most `limit`.

        Keys: by relevance (-(number of terms that start a word of the name), length of the name,
        path_lower), where a word starts at the beginning of the name or after one of
        WORD_BREAKS; otherwise (-server_modified, 0, path_lower): newest first.  The store filters and
        orders; it must not load non-matching entries into memory."""
        ...

    # -- teams (services/teams.py; rows keyed by the ids of localbox.domain.teams)
    def insert_team(self, team: Team) -> None: ...
    def get_team(self, team_id: str) -> Team | None: ...
    def get_team_by_name(self, name: str) -> Team | None: ...
    def set_team_transport_limit(self, team_id: str, limit: int | None) -> None: ...
    def insert_team_member(self, member: TeamMember) -> None: ...
    def get_team_member(self, team_member_id: str) -> TeamMember | None:
        """The member with this id, removed ones included."""
        ...
    def team_member_of_account(self, account_id: str) -> TeamMember | None:
        """The account's active membership, if it is on a team."""
        ...
    def list_team_members(self, team_id: str, *, after: str, limit: int, include_removed: bool) -> list[TeamMember]:
        """Members with team_member_id > `after`, in id order."""
        ...
    def count_team_members(self, team_id: str) -> int: ...
    def set_team_member_suspended(self, team_member_id: str, when: float | None) -> None:
        """Suspend the member as of `when`, or (None) lift the suspension."""
        ...

    def remove_team_member(self, team_member_id: str, when: float) -> None: ...
    def insert_team_namespace(self, namespace: TeamNamespace) -> None: ...
    def delete_team_namespace(self, namespace_id: str) -> None: ...
    def get_team_namespace(self, namespace_id: str) -> TeamNamespace | None: ...
    def list_team_namespaces(self, team_id: str, *, after: str, limit: int) -> list[TeamNamespace]:
        """The team's namespaces with namespace_id > `after`, in id order."""
        ...
    def insert_team_token(self, token: TeamToken) -> None: ...
    def get_team_token(self, key: str) -> TeamToken | None: ...
    def set_token_rate_limit(self, key: str, per_second: float | None) -> None:
        """Requests per second allowed to the token whose SHA-256 is `key` (None: no limit)."""
        ...
    def get_token_rate_limit(self, key: str) -> float | None: ...
    def count_transport_call(self, team_id: str, month: str, limit: int | None) -> bool:
        """Count one data transport call of the team in `month` if it stays within `limit` (True);
        otherwise count it as denied (False)."""
        ...
    def transport_usage(self, team_id: str, month: str) -> TransportUsage: ...

    # -- write contention (services/write_locks.py)
    def lock_namespaces(self, namespace_ids: Sequence[str], wait: float | None) -> frozenset[str]:
        """Take the namespace write locks this store shares between server processes, for the rest of
        the transaction, waiting at most `wait` seconds in all (None: no bound).  Returns the ones not
        obtained in time (not held).  A store with one writer process (SQLite) has none to take."""
        ...

    # -- per-database settings (the meta table, which resets keep)
    def get_setting(self, key: str) -> str | None: ...
    def setting_or_default(self, key: str, default: str) -> str:
        """The stored value of `key`; stores `default` first when there is none.  The first writer
        wins: every node sharing the database ends up with the same value."""
        ...

    # -- reset (the admin API of test servers)
    def reset_all(self) -> None:
        """Delete every account, token, namespace, entry, session and job: an empty server."""
        ...
    def reset_account(self, account_id: str) -> list[str]:
        """Delete the account and everything it owns (tokens, namespaces and their entries, sessions,
        jobs); returns the ids of its upload sessions, whose staged bytes the caller discards."""
        ...
    def set_session_expiry(self, session_id: str, expires: float) -> None:
        """Move a session's expiry (an injected `expired session` fault)."""
        ...


class MetadataStore(Protocol):
    async def run(self, fn: Callable[[MetadataTx], T]) -> T:
        """Run `fn` in one transaction: committed if it returns, rolled back if it raises."""
        ...

    async def read(self, fn: Callable[[MetadataTx], T]) -> T:
        """Run a read-only `fn` on a consistent snapshot of the last committed state.  May run in
        parallel with `run`; `fn` must not write."""
        ...

    def run_sync(self, fn: Callable[[MetadataTx], T]) -> T:
        """The same, for the admin CLI (no event loop)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StagedAppend:
    """What a BlobStore wrote for one append."""

    new_blocks: tuple[bytes, ...]  # digests of blocks completed (and durable) by this append
    tail_length: int  # bytes now held in the staging tail (0 <= tail_length < BLOCK_SIZE)
    tail_digest: bytes  # sha256 of the whole tail as it stands now
    received: int  # bytes of this append


@runtime_checkable
class CollectableBlobStore(Protocol):
    """Optional capability: a BlobStore that can reclaim unreferenced blocks (see LocalDiskBlobStore)."""

    def collect(self, referenced: Collection[bytes], live_staging: Collection[str], cutoff: float) -> Any:
        """Delete unreferenced blocks and dead staging last used before `cutoff`; blocking; returns stats."""
        ...


class BodyTooLarge(Exception):
    """The request body exceeded the byte limit given to the BlobStore."""


class BlobStore(Protocol):
    """Bytes only: 4 MiB blocks named by SHA-256, and per-session staging of a partial block."""

    async def append_staged(
        self, staging_id: str, block_index: int, tail_length: int,
        chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
        seal: bool = False,
    ) -> StagedAppend:
        """Append a stream to a sequential session whose stored part is `block_index` full blocks plus
        a staged tail of `tail_length` bytes.  Completed 4 MiB blocks become durable blocks; the rest
        stays durable in staging.  Bytes past `tail_length` left by an unacknowledged earlier call
        are discarded first.  Raises BodyTooLarge past `limit` bytes.  With `seal`, the final partial
        block becomes a durable block too (the last of `new_blocks`; tail_length is then 0)."""
        ...

    async def put_blocks(
        self, chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
    ) -> tuple[tuple[bytes, ...], int]:
        """Store a stream as consecutive blocks (the last may be short); returns (digests, size)."""
        ...

    def open(self, blocks: Sequence[bytes], size: int, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes [start, end) of a file made of `blocks` whose total size is `size`."""
        ...

    async def discard_staging(self, staging_id: str, below_index: int | None = None) -> None:
        """Remove staging data of a session (only parts below `below_index` when given)."""
        ...

    async def probe(self) -> None:
        """Readiness (/readyz, polled often): raise if the store cannot serve, cheaply and without
        writing anything (a folder check, one LIST on S3)."""
        ...


SearchKey = tuple[float, int, str]
WORD_BREAKS = " -_.,()[]"  # a search term right after one of these starts a word of the name


@dataclass(frozen=True, slots=True)
class NameFilter:
    """One way for an entry to pass a search: its kind, and optionally what its name must end with
    (`suffixes`, any of them) or must not end with (`exclude`), each suffix lower-cased with its dot.
    A name equal to a suffix (a dot-file such as ".pdf") has no extension and matches no suffix."""

    kind: str  # an EntryKind value
    suffixes: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobRow:
    """A batch job without its request and result (lists of jobs for the console and /metrics)."""

    job_id: str
    account_id: str
    kind: str
    state: str  # a JobState value
    created: float
    completed: float | None


@runtime_checkable
class SharedRateTx(Protocol):
    """Optional capability: token buckets kept in the database, for a store several server processes
    share (one process keeps its buckets in memory: services/rate_limits.py)."""

    def admit_rate(self, key: str, per_second: float) -> int | None:
        """Take one request from `key`'s bucket (holding max(per_second, 1), refilling at per_second
        on the database's clock) in one atomic statement: None if admitted, else the whole seconds
        to wait."""
        ...


@runtime_checkable
class InspectTx(Protocol):
    """Optional capability (#9): server-wide listings for the web console and /metrics.  A backend
    without it still serves the API; the console then says what it cannot show."""

    def list_accounts(self, limit: int) -> list[Account]:
        """Accounts by email."""
        ...

    def list_teams(self, limit: int) -> list[Team]: ...

    def list_open_sessions(self, limit: int) -> list[UploadSession]:
        """Upload sessions not yet committed, newest first, without their block lists."""
        ...

    def list_job_rows(self, limit: int, account_id: str | None = None) -> list[JobRow]:
        """Batch jobs, newest first."""
        ...

    def jobs_completed_after(self, after: float, limit: int) -> list[JobRow]:
        """Jobs that finished after `after`, oldest first."""
        ...
