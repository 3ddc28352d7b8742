"""Batch jobs: finish_batch (persisted, resumable), finish_batch_v2 (synchronous), and the
create_folder / delete / move / copy batches, which are persisted jobs of their own kinds.

Every batch of one account goes through that account's FIFO queue, so batches commit one after
another in arrival order even when a client sends several at once (Dropbox asks clients to
serialize; we do it for them).  A batch commits in one metadata transaction together with its
result, so after a crash a job is either complete with every entry committed once, or pending with
none committed; pending jobs are resumed at start-up in their original order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from localbox.domain.errors import (
    CallError,
    DomainError,
    PollFailure,
    SessionLookupError,
    StoreUnavailable,
    WriteFailure,
)
from localbox.domain.models import Entry, EntryKind, Job, JobState
from localbox.services.account_limits import DEFAULT_MAX_PENDING_JOBS, check_pending_jobs
from localbox.services.accounts import Caller
from localbox.services.files import CommitSpec
from localbox.services.job_leases import FAR_FUTURE, JobClaimer, LeaseLost, guarded
from localbox.services.mounts import write_namespaces
from localbox.services.tree import copy_many_tx, create_folders_tx, delete_many_tx, move_many_tx
from localbox.services.upload_sessions import EntryOutcome, FinishEntry, commit_entries_tx
from localbox.services.write_locks import (
    COMMIT_DELAY,
    TOO_MANY_WRITE_OPERATIONS,
    Held,
    LocalNamespaceLocks,
    NamespaceLocks,
)
from localbox.stores.base import BlobStore, MetadataStore, MetadataTx

log = logging.getLogger("localbox.jobs")
FINISH_BATCH = "finish_batch"
FINISH_BATCH_V2 = "finish_batch_v2"  # not a job kind: names synchronous batches to BatchFaults
CREATE_FOLDER_BATCH = "create_folder_batch"
DELETE_BATCH = "delete_batch"
MOVE_BATCH = "move_batch"
COPY_BATCH = "copy_batch"

# Job kinds other than finish_batch: one transaction function each, over the job's JSON request.
TreeBatch = Callable[[MetadataTx, Caller, dict[str, Any], float], list[EntryOutcome]]
TREE_BATCHES: dict[str, TreeBatch] = {
    CREATE_FOLDER_BATCH: create_folders_tx,
    DELETE_BATCH: delete_many_tx,
    MOVE_BATCH: move_many_tx,
    COPY_BATCH: copy_many_tx,
}


@dataclass(frozen=True, slots=True)
class JobFate:
    """What an injected fault makes of a batch job (test servers).  Decided at launch and kept in the
    job's request, so that a job's fate does not depend on when it runs."""

    stuck_until: float | None = None  # stays in_progress until then (a wall-clock time)
    stuck_forever: bool = False
    internal_error: bool = False  # polls answer internal_error ...
    committed: bool = False  # ... even though its entries were committed

    def to_json(self) -> dict[str, Any]:
        return {"stuck_until": self.stuck_until, "stuck_forever": self.stuck_forever,
                "internal_error": self.internal_error, "committed": self.committed}


class BatchFaults(Protocol):
    """Fault injection in batches (implemented by localbox.faults; absent in normal operation)."""

    def failing_entries(self, caller: Caller, kind: str, paths: Sequence[str]) -> dict[int, str]:
        """The entries of a `kind` batch that an injected fault fails, by index, with the tag they fail
        with: too_many_write_operations or not_closed."""
        ...

    def job_fate(self, caller: Caller, kind: str) -> JobFate | None: ...


def new_job_id() -> str:
    return "dbjid:" + secrets.token_urlsafe(48)


_RESULT_FIELDS = ("namespace_id", "path_lower", "path_display", "name", "id", "seq", "rev", "size",
                  "content_hash", "client_modified", "server_modified")


def entry_to_json(e: Entry) -> dict[str, Any]:
    # By hand: dataclasses.asdict deep-copies and cost ~40 ms for a 1000-entry result.
    # Results never need the block list.
    d = {f: getattr(e, f) for f in _RESULT_FIELDS}
    d["kind"] = e.kind.value
    return d


def entry_from_json(d: dict[str, Any]) -> Entry:
    return Entry(**{f: d[f] for f in _RESULT_FIELDS}, kind=EntryKind(d["kind"]))


def outcomes_to_json(outcomes: list[EntryOutcome]) -> str:
    return json.dumps([
        {"err": o.to_json()} if isinstance(o, DomainError) else {"ok": entry_to_json(o)} for o in outcomes
    ])


def outcomes_from_json(text: str) -> list[EntryOutcome]:
    return [DomainError.from_json(o["err"]) if "err" in o else entry_from_json(o["ok"]) for o in json.loads(text)]


_JOB_ATTEMPTS = 30  # about two minutes of retries for a store that stays unavailable


def _fail(tx: MetadataTx, job_id: str, now: float) -> None:
    tx.fail_job(job_id, now)


def _entry_fault(tag: str) -> DomainError:
    """The per-entry failure an injected finish_batch fault stands for (UploadSessionFinishError)."""
    return SessionLookupError(tag) if tag == "not_closed" else CallError(TOO_MANY_WRITE_OPERATIONS)


def _fault_entries(request: dict[str, Any]) -> dict[int, str]:
    # Jobs persisted before not_closed existed list bare indices (all too_many_write_operations).
    pairs = [i if isinstance(i, list) else [i, TOO_MANY_WRITE_OPERATIONS] for i in request.get("fault_entries", ())]
    return {int(i): str(tag) for i, tag in pairs}


# Where each tree batch keeps its entries in the job request, and which paths of an entry it writes.
_TREE_ENTRIES: dict[str, tuple[str, Callable[[Any], list[str]]]] = {
    CREATE_FOLDER_BATCH: ("paths", lambda p: [p]),
    DELETE_BATCH: ("entries", lambda e: [e["path"]]),
    MOVE_BATCH: ("entries", lambda e: [e["from_path"], e["to_path"]]),
    COPY_BATCH: ("entries", lambda e: [e["from_path"], e["to_path"]]),
}


def _contention(kind: str) -> DomainError:
    """The per-entry too_many_write_operations of a batch kind's result union (CreateFolderEntryError
    only has it inside WriteError; DeleteError and RelocationBatchErrorEntry at their top level)."""
    if kind == CREATE_FOLDER_BATCH:
        return WriteFailure(TOO_MANY_WRITE_OPERATIONS)
    return CallError(TOO_MANY_WRITE_OPERATIONS)


def _tree_batch_outcomes(tx: MetadataTx, kind: str, caller: Caller, request: dict[str, Any],
                         refused: frozenset[int]) -> list[EntryOutcome]:
    """Run a tree batch over its entries except `refused` (their namespace was busy past the bound),
    which fail with too_many_write_operations, each at its own index."""
    batch = TREE_BATCHES[kind]
    if not refused:
        return batch(tx, caller, request, time.time())
    key, _ = _TREE_ENTRIES[kind]
    items = request[key]
    kept = {**request, key: [item for i, item in enumerate(items) if i not in refused]}
    done = iter(batch(tx, caller, kept, time.time()))
    return [_contention(kind) if i in refused else next(done) for i in range(len(items))]


def _run_tree_batch(tx: MetadataTx, kind: str, caller: Caller, request: dict[str, Any], job_id: str,
                    refused: frozenset[int]) -> None:
    outcomes = _tree_batch_outcomes(tx, kind, caller, request, refused)
    tx.complete_job(job_id, outcomes_to_json(outcomes), time.time())


def _run_tree_batch_then_fail(tx: MetadataTx, kind: str, caller: Caller, request: dict[str, Any],
                              job_id: str, refused: frozenset[int]) -> None:
    """A job_internal_error fault with side effects: the batch commits, yet its polls say internal_error."""
    _tree_batch_outcomes(tx, kind, caller, request, refused)
    tx.fail_job(job_id, time.time())


def _held_back(fate: JobFate | None) -> float | None:
    """run_after of a job a job_stuck fault holds back (it then runs only from that time, on any node)."""
    if fate is None:
        return None
    return FAR_FUTURE if fate.stuck_forever else fate.stuck_until


def _pending_before(tx: MetadataTx, account_id: str, created: float, now: float) -> bool:
    return tx.pending_before(account_id, created, now)


def _purge(tx: MetadataTx, cutoff: float) -> int:
    return tx.delete_jobs_before(cutoff)


class BatchService:
    def __init__(self, store: MetadataStore, blobs: BlobStore, retention_seconds: float,
                 faults: BatchFaults | None = None, write_locks: NamespaceLocks | None = None,
                 claimer: JobClaimer | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.retention = retention_seconds
        self.faults = faults
        self.write_locks = write_locks or LocalNamespaceLocks()
        self.claimer = claimer or JobClaimer(store, exclusive=True)
        self._timers: set[asyncio.TimerHandle] = set()  # jobs held back by a job_stuck fault
        self.max_pending_jobs = DEFAULT_MAX_PENDING_JOBS  # per account (account_limits.py); 0: none
        self._queues: dict[str, deque[Callable[[], Awaitable[None]]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        # Jobs are claimed from the store (job_leases.py): launched here or on another node, pending
        # from before a restart, or left by a node that died.
        await self.claimer.start(lambda job: self._enqueue(job.account_id, self._job_runner(job.job_id)))

    async def stop(self) -> None:
        await self.claimer.stop()
        for timer in self._timers:
            timer.cancel()
        tasks = [*self._workers.values(), *self._background]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def purge_expired(self) -> int:
        """Forget finished jobs older than the retention period; returns how many went."""
        return await self.store.run(partial(_purge, cutoff=time.time() - self.retention))

    # -- the per-account FIFO ------------------------------------------------------------------
    def _enqueue(self, account_id: str, work: Callable[[], Awaitable[None]]) -> None:
        self._queues.setdefault(account_id, deque()).append(work)
        if account_id not in self._workers:
            self._workers[account_id] = asyncio.create_task(self._drain(account_id))

    async def _drain(self, account_id: str) -> None:
        queue = self._queues[account_id]
        try:
            while queue:
                work = queue.popleft()
                try:
                    await work()
                except Exception:
                    log.exception("batch work for %s failed; it stays pending", account_id)
        finally:
            del self._workers[account_id]
            if not queue:
                self._queues.pop(account_id, None)

    # -- commits -----------------------------------------------------------------------------
    async def _commit(self, caller: Caller, entries: list[FinishEntry], job_id: str | None,
                      failing: Mapping[int, str] | None = None, fail_job: bool = False) -> list[EntryOutcome]:
        targets = await write_namespaces(self.store, caller, [e.commit.path for e in entries])

        def _tx(tx: MetadataTx, held: Held) -> list[EntryOutcome]:
            # Entries that an injected fault fails, or whose namespace stayed busy past the bound (in
            # this process or, on a shared store, another node), are left out of the commit: their
            # sessions stay usable for the client's retry.
            busy = held.take(tx, targets)
            skip = {i: _entry_fault(tag) for i, tag in (failing or {}).items()}
            skip.update({i: CallError(TOO_MANY_WRITE_OPERATIONS) for i, ns in enumerate(targets) if ns in busy})
            kept = [e for i, e in enumerate(entries) if i not in skip]
            done = iter(commit_entries_tx(tx, caller, kept, require_closed=True))
            outcomes = [skip[i] if i in skip else next(done) for i in range(len(entries))]
            if job_id is not None and fail_job:
                tx.fail_job(job_id, time.time())
            elif job_id is not None:
                tx.complete_job(job_id, outcomes_to_json(outcomes), time.time())
            return outcomes

        async with self.write_locks.hold_some(set(targets)) as held:
            outcomes = await self.store.run(guarded(partial(_tx, held=held)))
        done = [e.session_id for e, o in zip(entries, outcomes, strict=True) if not isinstance(o, DomainError)]
        if done:
            # Leftover staging files of committed sessions are garbage: clear them off the commit path.
            task = asyncio.create_task(self._discard(done))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return outcomes

    async def _discard(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            await self.blobs.discard_staging(session_id)

    def _job_runner(self, job_id: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            async with self.claimer.holding(job_id):
                try:
                    await run_claimed()
                except LeaseLost:
                    log.warning("job %s was taken over by another node; this node leaves it", job_id)

        async def run_claimed() -> None:
            def _load(tx: MetadataTx) -> tuple[Job, Caller] | None:
                job = tx.get_job(job_id)
                if job is None or job.state != JobState.PENDING:
                    return None
                request = json.loads(job.request)
                account = tx.get_account(job.account_id)
                if account is None:
                    return None
                return job, Caller(account, frozenset(request["scopes"]), request["namespace_id"],
                                   request.get("quota"))

            loaded = await self.store.run(_load)
            if loaded is None:
                return
            job, caller = loaded
            request = json.loads(job.request)
            fate = request.get("fault") or {}
            if fate.get("stuck_forever"):
                return  # stays pending, so in_progress, for as long as the server runs
            delay = (fate.get("stuck_until") or 0) - time.time()
            if delay > 0:  # come back then; later batches of the account go ahead meanwhile
                timer = asyncio.get_running_loop().call_later(delay, self._release, job.account_id, job_id)
                self._timers.add(timer)
                return
            if fate.get("internal_error") and not fate.get("committed"):
                await self.store.run(partial(_fail, job_id=job_id, now=time.time()))
                return
            for attempt in range(_JOB_ATTEMPTS):
                try:
                    if job.kind == FINISH_BATCH:
                        entries = [FinishEntry(e["session_id"], e["offset"], CommitSpec.from_json(e["commit"]))
                                   for e in request["entries"]]
                        await self._commit(caller, entries, job_id, _fault_entries(request),
                                           fail_job=bool(fate.get("internal_error")))
                    else:
                        await self._tree_job(job.kind, caller, request, job_id, bool(fate.get("internal_error")))
                    return
                except StoreUnavailable:
                    # Transient: retry in place, holding the account's queue so that no later batch
                    # overtakes this one.
                    log.warning("%s job %s: store unavailable (attempt %d)", job.kind, job_id, attempt + 1)
                    await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                except LeaseLost:
                    raise
                except Exception:
                    log.exception("%s job %s failed", job.kind, job_id)
                    break
            # Nothing was committed (a job commits in one transaction): polls say internal_error,
            # which tells clients to check what happened, as Dropbox's PollError documents.
            await self.store.run(partial(_fail, job_id=job_id, now=time.time()))

        return run

    async def _tree_job(self, kind: str, caller: Caller, request: dict[str, Any], job_id: str,
                        internal_error: bool) -> None:
        key, written = _TREE_ENTRIES[kind]
        items = [list(written(item)) for item in request[key]]
        flat = iter(await write_namespaces(self.store, caller, [p for ps in items for p in ps]))
        targets = [{next(flat) for _ in ps} for ps in items]
        run = _run_tree_batch_then_fail if internal_error else _run_tree_batch

        def _tx(tx: MetadataTx, held: Held) -> None:
            busy = held.take(tx, set().union(*targets))
            refused = frozenset(i for i, ns in enumerate(targets) if ns & busy)
            run(tx, kind=kind, caller=caller, request=request, job_id=job_id, refused=refused)

        async with self.write_locks.hold_some(set().union(*targets)) as held:
            await self.store.run(guarded(partial(_tx, held=held)))

    def _release(self, account_id: str, job_id: str) -> None:
        now = asyncio.get_running_loop().time()
        self._timers = {t for t in self._timers if t.when() > now}
        self._enqueue(account_id, self._job_runner(job_id))

    def _failing(self, caller: Caller, kind: str, entries: list[FinishEntry]) -> dict[int, str]:
        if self.faults is None:
            return {}
        return self.faults.failing_entries(caller, kind, [e.commit.path for e in entries])

    async def launch(self, caller: Caller, entries: list[FinishEntry]) -> str:
        """finish_batch: persist the job, queue it, and return its id at once."""
        request: dict[str, Any] = {
            "entries": [{"session_id": e.session_id, "offset": e.offset, "commit": e.commit.to_json()}
                        for e in entries],
        }
        failing = self._failing(caller, FINISH_BATCH, entries)
        if failing:
            request["fault_entries"] = sorted([i, tag] for i, tag in failing.items())
        return await self.launch_job(caller, FINISH_BATCH, request)

    async def launch_job(self, caller: Caller, kind: str, request: dict[str, Any]) -> str:
        """Persist a job of `kind` (with what it needs to know of the caller), queue it, return its id."""
        fate = self.faults.job_fate(caller, kind) if self.faults is not None else None
        if fate is not None:
            request = {**request, "fault": fate.to_json()}
        text = json.dumps({"namespace_id": caller.namespace_id, "scopes": sorted(caller.scopes),
                           "quota": caller.quota, **request})
        job = Job(job_id=new_job_id(), account_id=caller.account.account_id, kind=kind,
                  state=JobState.PENDING, created=time.time(), request=text, run_after=_held_back(fate))

        def _insert_within_limit(tx: MetadataTx) -> None:
            check_pending_jobs(tx, job.account_id, self.max_pending_jobs)
            tx.insert_job(job)

        await self.store.run(_insert_within_limit)
        self.claimer.kick()
        return job.job_id

    async def check(self, caller: Caller, job_id: str, kind: str = FINISH_BATCH) -> list[EntryOutcome] | None:
        """None while the job runs; its per-entry outcomes once complete."""
        job = await self.store.read(lambda tx: tx.get_job(job_id))
        if job is None or job.account_id != caller.account.account_id or job.kind != kind:
            raise PollFailure("invalid_async_job_id")
        if job.state == JobState.FAILED:
            raise PollFailure("internal_error")
        if job.state == JobState.PENDING or job.result is None:
            return None
        if job.completed is not None and job.completed < time.time() - self.retention:
            raise PollFailure("invalid_async_job_id")
        return outcomes_from_json(job.result)

    async def commit_now(self, caller: Caller, entries: list[FinishEntry]) -> list[EntryOutcome]:
        """finish_batch_v2: the same commit, in the account's queue, awaited."""
        done: asyncio.Future[list[EntryOutcome]] = asyncio.get_running_loop().create_future()
        failing = self._failing(caller, FINISH_BATCH_V2, entries)
        delay = COMMIT_DELAY.get()  # the queue's worker task does not run in this call's context

        async def run() -> None:
            token = COMMIT_DELAY.set(delay)
            try:
                done.set_result(await self._commit(caller, entries, None, failing))
            except Exception as e:
                done.set_exception(e)  # the caller's request reports it; the queue goes on
            finally:
                COMMIT_DELAY.reset(token)

        await self._after_earlier_jobs(caller.account.account_id)
        self._enqueue(caller.account.account_id, run)
        return await done

    async def _after_earlier_jobs(self, account_id: str, wait: float = 30.0) -> None:
        """finish_batch_v2 commits after the account's batches launched before it, whichever node runs
        them (#5); held-back jobs (job_stuck faults) do not count, and it waits `wait` seconds at most."""
        since, deadline = time.time(), time.monotonic() + wait
        while time.monotonic() < deadline and await self.store.read(
                partial(_pending_before, account_id=account_id, created=since, now=time.time())):
            await asyncio.sleep(0.02)
