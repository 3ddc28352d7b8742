"""Write contention: commits into one namespace run one at a time, and none waits for its turn longer
than a bound (`serve --write-wait`).  Past the bound a commit is refused with Dropbox's answer to
namespace lock contention, `too_many_write_operations`: HTTP 429 for a whole call, a per-entry
failure inside batch results.  A refused commit writes nothing, so a client's retry can neither lose
nor double an entry.

The contract is `NamespaceLocks.hold`: take the write locks of some namespaces within the bound, or
say which could not be had.  `LocalNamespaceLocks` keeps it for one server process with asyncio locks.
With the SQLite store that is the whole story: every transaction also queues for its one writer
thread, and a commit holds its namespace's lock while it waits in that queue, so the bound covers
the queue too.  A store shared by several server processes (PostgreSQL) also has locks the processes
share; the commit transaction takes them first thing, in the time left of the same bound
(`Held.take`: `MetadataTx.lock_namespaces`, advisory locks under `lock_timeout` released at COMMIT),
so a node waiting on another node's namespace is refused the same way, before it has written anything.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from localbox.domain import paths
from localbox.domain.errors import DomainError, RateLimited
from localbox.stores.base import MetadataTx

TOO_MANY_WRITE_OPERATIONS = "too_many_write_operations"
RETRY_AFTER = 1  # seconds a refused client is told to wait (the SDK's own default for this error)

# Test servers' `slow_commit` fault: a commit holds its locks this many seconds before it runs, so that
# other writers into the namespace meet contention.  Set by the API layer for the call it serves.
COMMIT_DELAY: contextvars.ContextVar[float] = contextvars.ContextVar("localbox_commit_delay", default=0.0)


class NamespaceBusy(Exception):
    """The write locks of these namespaces were not free within the bound."""

    def __init__(self, namespace_ids: Collection[str]) -> None:
        super().__init__(", ".join(sorted(namespace_ids)))
        self.namespace_ids = frozenset(namespace_ids)

    def rate_limited(self) -> RateLimited:
        return RateLimited(TOO_MANY_WRITE_OPERATIONS, RETRY_AFTER)


class Held:
    """Locks held by this process for a commit.  `busy`: the namespaces that were not free within the
    bound (hold_some); `take` completes the job inside the commit transaction with the store's shared
    locks, in the time left."""

    def __init__(self, busy: frozenset[str], deadline: float | None, delay: float) -> None:
        self.busy = busy
        self.deadline = deadline  # time.monotonic() after which no more waiting; None: no bound
        self.delay = delay  # the slow_commit fault, when the store's locks are the ones to hold it under

    def take(self, tx: MetadataTx, namespace_ids: Collection[str]) -> frozenset[str]:
        """Take the store's locks of `namespace_ids` (minus the busy ones) in this transaction; returns
        every namespace that is busy, here or in-process."""
        wanted = sorted(set(namespace_ids) - self.busy)
        wait = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        busy = self.busy | tx.lock_namespaces(wanted, wait) if wanted else self.busy
        if self.delay and set(wanted) - busy:
            time.sleep(self.delay)  # on the transaction's own worker thread, holding the locks
        return busy

    def take_all(self, tx: MetadataTx, namespace_ids: Collection[str]) -> None:
        """`take`, for a whole call: raises NamespaceBusy (the transaction then writes nothing)."""
        busy = self.take(tx, namespace_ids)
        if busy:
            raise NamespaceBusy(busy)


class NamespaceLocks(Protocol):
    def hold(self, namespace_ids: Collection[str]) -> AbstractAsyncContextManager[Held]:
        """Hold the write locks of all `namespace_ids` for the block.  Raises NamespaceBusy (holding
        none) when some are not obtained within the bound."""
        ...

    def hold_some(self, namespace_ids: Collection[str]) -> AbstractAsyncContextManager[Held]:
        """Hold as many of the locks as can be had within the bound; the block gets the busy ones."""
        ...


class LocalNamespaceLocks:
    """Per-namespace asyncio locks of one process.  Locks are taken in sorted order, so two commits
    that each need several namespaces cannot deadlock; a lock is forgotten when nobody holds or
    waits for it.  `wait` None: no bound."""

    def __init__(self, wait: float | None = None, *, shared_store: bool = False) -> None:
        self.wait = wait
        # With a store shared between processes, a slow_commit fault holds the commit inside its
        # transaction (Held.take), where it also holds the store's locks that other nodes wait on.
        self.shared_store = shared_store
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def _ref(self, ns: str) -> asyncio.Lock:
        lock, n = self._locks.get(ns, (asyncio.Lock(), 0))
        self._locks[ns] = (lock, n + 1)
        return lock

    def _unref(self, ns: str) -> None:
        lock, n = self._locks[ns]
        if n == 1:
            del self._locks[ns]
        else:
            self._locks[ns] = (lock, n - 1)

    async def _acquire(self, ns: str, deadline: float | None) -> bool:
        lock = self._ref(ns)
        try:
            if deadline is None:
                await lock.acquire()
            else:
                # A free lock is taken at once even past the deadline (a bound of 0 means "never wait").
                async with asyncio.timeout_at(deadline):
                    await lock.acquire()
            return True
        except TimeoutError:
            self._unref(ns)
            return False
        except BaseException:
            self._unref(ns)
            raise

    def _release(self, ns: str) -> None:
        self._locks[ns][0].release()
        self._unref(ns)

    def _deadline(self) -> float | None:
        return None if self.wait is None else asyncio.get_running_loop().time() + self.wait

    def _held(self, busy: set[str], started: float) -> Held:
        """What is left of the bound, on the clock the transaction's thread reads."""
        deadline = None if self.wait is None else started + self.wait
        return Held(frozenset(busy), deadline, COMMIT_DELAY.get() if self.shared_store else 0.0)

    async def _delay(self, held: list[str]) -> None:
        delay = COMMIT_DELAY.get()
        if delay and held and not self.shared_store:
            await asyncio.sleep(delay)

    @asynccontextmanager
    async def hold_some(self, namespace_ids: Collection[str]) -> AsyncIterator[Held]:
        started, deadline = time.monotonic(), self._deadline()
        held: list[str] = []
        busy: set[str] = set()
        try:
            for ns in sorted(set(namespace_ids)):
                if await self._acquire(ns, deadline):
                    held.append(ns)
                else:
                    busy.add(ns)
            await self._delay(held)
            yield self._held(busy, started)
        finally:
            for ns in reversed(held):
                self._release(ns)

    @asynccontextmanager
    async def hold(self, namespace_ids: Collection[str]) -> AsyncIterator[Held]:
        started, deadline = time.monotonic(), self._deadline()
        held: list[str] = []
        try:
            for ns in sorted(set(namespace_ids)):
                if not await self._acquire(ns, deadline):
                    raise NamespaceBusy([ns])
                held.append(ns)
            await self._delay(held)
            yield self._held(set(), started)
        finally:
            for ns in reversed(held):
                self._release(ns)


def namespaces_of(default: str, entry_paths: Iterable[str]) -> frozenset[str]:
    """The namespaces that writes to `entry_paths` address: `ns:<id>/...` paths name theirs, every
    other path (relative, `id:`, `rev:`, malformed) counts as the caller's `default` namespace.  An
    `id:` path into another namespace is then serialized with the caller's instead; the store's own
    transaction isolation still keeps that write correct."""
    return frozenset({namespace_of(default, path) for path in entry_paths} or {default})


def namespace_of(default: str, path: str) -> str:
    try:
        ref = paths.parse(path)
    except DomainError:
        return default
    return ref.namespace_id or default
