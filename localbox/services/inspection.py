"""Read-only views of the whole server for the web console and /metrics (#9): accounts and teams with
their usage and tokens (never secrets), namespaces' folders and file revisions, upload sessions in
flight, batch jobs with their per-entry results.  Server-wide listings need the optional InspectTx
capability of the metadata store; without it they raise NotInspectable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from localbox.domain.errors import DomainError
from localbox.domain.models import Account, Entry, Job, JobState, Token, UploadSession
from localbox.domain.teams import Team, TeamMember, TeamNamespace
from localbox.services.jobs import outcomes_from_json
from localbox.stores.base import BlobStore, InspectTx, JobRow, MetadataStore, MetadataTx

T = TypeVar("T")
LIST_LIMIT = 1000


class NotInspectable(Exception):
    """The metadata backend has no server-wide listings (InspectTx)."""


@dataclass(frozen=True, slots=True)
class AccountView:
    account: Account
    bytes_used: int
    tokens: list[Token]
    team: TeamMember | None


@dataclass(frozen=True, slots=True)
class TeamView:
    team: Team
    members: list[TeamMember]
    namespaces: list[TeamNamespace]


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One entry of a finished batch: the committed entry, or the error's tag path."""

    path: str
    entry: Entry | None
    error: str | None


@dataclass(frozen=True, slots=True)
class JobView:
    job: Job
    paths: list[str]  # what each entry asked for (finish_batch: the commit path)
    results: list[EntryResult] | None  # None while pending
    ahead: int  # pending jobs of the same account created before it (the account's FIFO)


def _paths(kind: str, request: dict[str, Any]) -> list[str]:
    if "entries" in request:
        out = []
        for e in request["entries"]:
            commit = e.get("commit") if isinstance(e, dict) else None
            if isinstance(commit, dict):
                out.append(str(commit.get("path", "")))
            elif isinstance(e, dict):
                out.append(str(e.get("path") or e.get("from_path") or ""))
            else:
                out.append(str(e))
        return out
    return [str(p) for p in request.get("paths", [])]


class InspectService:
    def __init__(self, store: MetadataStore, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    async def _inspect(self, fn: Callable[[InspectTx, MetadataTx], T]) -> T:
        def run(tx: MetadataTx) -> T:
            if not isinstance(tx, InspectTx):
                raise NotInspectable("this metadata backend offers no server-wide listings")
            return fn(tx, tx)

        return await self.store.read(run)

    # -- accounts and teams
    async def accounts(self) -> list[AccountView]:
        def load(ix: InspectTx, tx: MetadataTx) -> list[AccountView]:
            return [AccountView(a, tx.bytes_used(a.account_id), tx.list_tokens(a.account_id),
                                tx.team_member_of_account(a.account_id))
                    for a in ix.list_accounts(LIST_LIMIT)]

        return await self._inspect(load)

    async def teams(self) -> list[TeamView]:
        def load(ix: InspectTx, tx: MetadataTx) -> list[TeamView]:
            return [TeamView(t, tx.list_team_members(t.team_id, after="", limit=LIST_LIMIT, include_removed=False),
                             tx.list_team_namespaces(t.team_id, after="", limit=LIST_LIMIT))
                    for t in ix.list_teams(LIST_LIMIT)]

        return await self._inspect(load)

    # -- files
    async def folder(self, namespace_id: str, path_lower: str) -> tuple[Entry | None, list[Entry]]:
        """The folder (None for the root) and its children; raises LookupError when it is not a folder."""
        def load(tx: MetadataTx) -> tuple[Entry | None, list[Entry]]:
            if tx.namespace_owner(namespace_id) is None:
                raise LookupError(f"no namespace {namespace_id}")
            folder = tx.get_entry(namespace_id, path_lower) if path_lower else None
            if path_lower and (folder is None or folder.kind.value != "folder"):
                raise LookupError(f"no folder {path_lower}")
            children = tx.list_entries(namespace_id, path_lower, recursive=False, after="", limit=LIST_LIMIT,
                                       live_only=True)
            return folder, children

        return await self.store.read(load)

    async def file(self, namespace_id: str, path_lower: str) -> tuple[Entry, list[Entry]]:
        """A live file and its earlier versions (newest first); LookupError when there is none."""
        def load(tx: MetadataTx) -> tuple[Entry, list[Entry]]:
            entry = tx.get_entry(namespace_id, path_lower)
            if entry is None or entry.kind.value != "file":
                raise LookupError(f"no file {path_lower}")
            return entry, tx.list_revisions(file_id=entry.id, limit=100)

        return await self.store.read(load)

    async def content(self, rev: str) -> tuple[Entry, AsyncIterator[bytes]]:
        """The bytes of one file version (current or kept), by rev."""
        entry = await self.store.read(lambda tx: tx.get_entry_by_rev(rev))
        if entry is None or entry.kind.value != "file":
            raise LookupError(f"no file version {rev}")
        return entry, self.blobs.open(entry.blocks, entry.size, 0, entry.size)

    # -- sessions and jobs
    async def sessions(self) -> list[UploadSession]:
        return await self._inspect(lambda ix, tx: ix.list_open_sessions(LIST_LIMIT))

    async def jobs(self, limit: int = 200) -> list[JobRow]:
        return await self._inspect(lambda ix, tx: ix.list_job_rows(limit))

    async def jobs_completed_after(self, after: float) -> list[JobRow]:
        return await self._inspect(lambda ix, tx: ix.jobs_completed_after(after, 10_000))

    async def job(self, job_id: str) -> JobView:
        def load(tx: MetadataTx) -> tuple[Job | None, int]:
            job = tx.get_job(job_id)
            if job is None or job.state != JobState.PENDING:
                return job, 0
            ahead = sum(1 for j in tx.pending_jobs() if j.account_id == job.account_id and j.created < job.created)
            return job, ahead

        job, ahead = await self.store.read(load)
        if job is None:
            raise LookupError(f"no job {job_id}")
        request = json.loads(job.request)
        paths = _paths(job.kind, request)
        results: list[EntryResult] | None = None
        if job.result is not None:
            outcomes = outcomes_from_json(job.result)
            results = [EntryResult(paths[i] if i < len(paths) else "",
                                   None if isinstance(o, DomainError) else o,
                                   "/".join(o.tags) if isinstance(o, DomainError) else None)
                       for i, o in enumerate(outcomes)]
        return JobView(job, paths, results, ahead)

    async def load(self) -> tuple[int, int, int]:
        """(open upload sessions, queued jobs, running jobs): each account runs its oldest pending job
        (its FIFO), the others wait."""
        def count(tx: MetadataTx) -> tuple[int, int, int]:
            pending = tx.pending_jobs()
            running = len({j.account_id for j in pending})
            return len(tx.open_session_ids()), len(pending) - running, running

        return await self.store.read(count)

    # -- readiness
    async def probe(self, timeout: float = 5.0) -> dict[str, str]:
        """Whether each store answers: the metadata store a read, the blob store its own cheap,
        write-free check (BlobStore.probe: readiness is polled often, a write per poll costs on S3)."""
        import asyncio

        async def metadata() -> None:
            await self.store.read(lambda tx: tx.get_account("readiness-probe"))

        async def blobs() -> None:
            await self.blobs.probe()

        results: dict[str, str] = {}
        for name, check in (("metadata", metadata), ("blobs", blobs)):
            try:
                await asyncio.wait_for(check(), timeout)
                results[name] = "ok"
            except TimeoutError:
                results[name] = f"no answer within {timeout:g}s"
            except Exception as e:  # any failure means not ready; the reason is for the operator
                results[name] = f"{type(e).__name__}"
        return results

