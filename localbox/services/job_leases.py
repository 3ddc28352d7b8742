"""Jobs on any node (#5): batch jobs live in the metadata store and are claimed with leases.

A node's JobClaimer claims the oldest runnable job (MetadataTx.claim_job: pending, not held back, not
leased to a live node, first among its account's pending jobs) and hands it to the BatchService; while
the job runs, its lease is renewed.  A node that dies stops renewing, and once the lease lapses any
node claims the job again.  Exactly once: the transaction that commits a job's entries first checks,
with the job's row locked, that this node still holds it pending (`guarded`), and completes the job in
the same transaction; so a job is committed by one node or by none, and a job taken over had not
committed.  A store that one node owns (SQLite) forgets every lease when that node starts, so a
restarted server resumes its jobs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from functools import partial
from typing import TypeVar

from localbox.domain.errors import StoreUnavailable
from localbox.domain.models import Job
from localbox.stores.base import MetadataStore, MetadataTx

log = logging.getLogger("localbox.jobs")
T = TypeVar("T")
FAR_FUTURE = 1e18  # run_after of a job that must never run (a job_stuck fault without an end)

# (job_id, owner) of the job the current task runs: its commit transactions are guarded.
JOB_GUARD: ContextVar[tuple[str, str] | None] = ContextVar("localbox_job_guard", default=None)


class LeaseLost(Exception):
    """This node no longer holds the job (its lease lapsed and another node took it over)."""


def guarded(fn: Callable[[MetadataTx], T]) -> Callable[[MetadataTx], T]:
    """`fn` run only if this task's job is still ours and pending (checked with its row locked)."""
    guard = JOB_GUARD.get()
    if guard is None:
        return fn

    def run(tx: MetadataTx) -> T:
        if not tx.hold_job(*guard):
            raise LeaseLost(guard[0])
        return fn(tx)

    return run


def _claim(tx: MetadataTx, owner: str, now: float, until: float) -> Job | None:
    return tx.claim_job(owner, now, until)


def _renew(tx: MetadataTx, job_id: str, owner: str, until: float) -> bool:
    return tx.renew_job(job_id, owner, until)


class JobClaimer:
    def __init__(self, store: MetadataStore, *, exclusive: bool, lease: float = 10.0, poll: float = 0.25,
                 max_running: int = 8, node_id: str | None = None) -> None:
        self.store = store
        self.exclusive = exclusive
        self.lease = lease
        self.poll = poll
        self.max_running = max_running
        self.node = node_id or f"node-{secrets.token_hex(6)}"
        self._running: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, dispatch: Callable[[Job], None]) -> None:
        """Claim jobs from now on, handing each to `dispatch` (which must end it with `holding`)."""
        if self.exclusive:
            released = await self.store.run(lambda tx: tx.release_leases())
            if released:
                log.info("resuming %d pending job(s)", released)
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(dispatch))
        log.info("jobs: this node claims jobs as %s (lease %gs)", self.node, self.lease)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def kick(self) -> None:
        """Look for runnable jobs now (a job was launched, or one ended)."""
        if self._wake is not None:
            self._wake.set()

    async def _loop(self, dispatch: Callable[[Job], None]) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            while len(self._running) < self.max_running:
                now = time.time()
                try:
                    job = await self.store.run(partial(_claim, owner=self.node, now=now, until=now + self.lease))
                except StoreUnavailable as e:
                    log.warning("claiming jobs: %s", e)
                    break
                except Exception:  # keep claiming: the next round retries
                    log.exception("claiming jobs failed")
                    break
                if job is None:
                    break
                self._running.add(job.job_id)
                dispatch(job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    @contextlib.asynccontextmanager
    async def holding(self, job_id: str) -> AsyncIterator[None]:
        """Run a claimed job: its lease is renewed and its commits guarded until the block ends."""
        token = JOB_GUARD.set((job_id, self.node))
        renewer = asyncio.create_task(self._renew(job_id))
        try:
            yield
        finally:
            renewer.cancel()
            JOB_GUARD.reset(token)
            self._running.discard(job_id)
            self.kick()

    async def _renew(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                held = await self.store.run(partial(_renew, job_id=job_id, owner=self.node,
                                                    until=time.time() + self.lease))
            except StoreUnavailable:
                continue
            if not held:
                return  # finished meanwhile, or taken over: the guard stops any commit
