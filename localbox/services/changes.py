"""Change notification: list_folder/get_latest_cursor and list_folder/longpoll.

A longpoll waits until something under its cursor's folder changes after the cursor.  Writers do not
notify anyone: every write advances its namespace's change counter (`next_seq`), and one
ChangeWatcher per process polls the counters of the namespaces someone waits on, all in ONE store
read per tick.  So a write made by another process (the admin CLI, another node sharing a database)
wakes waiters exactly like a local one, and commit code needs no hooks.  A counter that moved only
tells the waiters of that namespace to look again: each then checks its own folder with a bounded
query (`list_changes(..., since=cursor, limit=1)`), because most writes in a namespace are not under
any one waiter's folder.

Cost: with nobody waiting, nothing runs.  With waiters, one small indexed read per tick (~200 ms) for
all of them, plus one bounded read per waiter whose namespace changed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from localbox.domain.errors import CallError
from localbox.services import mount_listing
from localbox.services.accounts import Caller
from localbox.services.cursors import CursorKey
from localbox.services.files import DEFAULT_LIST_LIMIT, ListCursor, folder_to_list_tx
from localbox.stores.base import MetadataStore, MetadataTx

log = logging.getLogger("localbox.changes")

POLL_INTERVAL = 0.2  # seconds between two reads of the watched counters
# Dropbox adds up to 90 s of random jitter to a longpoll's timeout against thundering herds.  A
# self-hosted server has no herd to speak of, so the default adds none (and tests stay fast).
DEFAULT_JITTER = 0.0


@dataclass(eq=False, slots=True)
class _Waiter:
    namespace_id: str
    seen: int  # woken once the namespace's counter is above this
    woken: asyncio.Future[None]  # shared by the waiters of one wait on several namespaces


class ChangeWatcher:
    """Wakes waiters when their namespace's change counter moves past what they have seen."""

    def __init__(self, store: MetadataStore, interval: float = POLL_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._waiters: dict[str, set[_Waiter]] = {}
        self._wanted = asyncio.Event()  # set while anyone waits
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def waiting(self) -> int:
        """How many waiters are registered (a disconnected client must not leave one behind)."""
        return sum(len(ws) for ws in self._waiters.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="change-watcher")

    async def stop(self) -> None:
        """Stop polling; pending and later waits end at once (as timeouts)."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for ws in self._waiters.values():
            for w in ws:
                if not w.woken.done():
                    w.woken.set_result(None)  # they look once more, then answer

    async def wait_beyond(self, namespace_id: str, seen: int, timeout: float) -> bool:
        """Wait until `namespace_id`'s counter exceeds `seen` (True), or `timeout` seconds (False).
        Also True when the namespace is gone.  Cancellation unregisters the waiter."""
        return await self.wait_any({namespace_id: seen}, timeout)

    async def wait_any(self, seen: Mapping[str, int], timeout: float) -> bool:
        """`wait_beyond` for several namespaces at once: True as soon as one of them moves."""
        if timeout <= 0 or self._stopped or not seen:
            return False
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        mine = [_Waiter(ns, s, woken) for ns, s in seen.items()]
        for w in mine:
            self._waiters.setdefault(w.namespace_id, set()).add(w)
        self._wanted.set()
        try:
            await asyncio.wait_for(asyncio.shield(woken), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for w in mine:
                ws = self._waiters.get(w.namespace_id)
                if ws is not None:
                    ws.discard(w)
                    if not ws:
                        del self._waiters[w.namespace_id]
            if not self._waiters:
                self._wanted.clear()

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            try:
                await self._tick()
            except Exception:  # a store hiccup: the next tick retries
                log.warning("reading change counters failed", exc_info=True)
            await asyncio.sleep(self.interval)

    async def _tick(self) -> None:
        ids = list(self._waiters)
        if not ids:
            return
        seqs = await self.store.read(lambda tx: tx.namespace_seqs(ids))
        for ns in ids:
            current = seqs.get(ns)
            for w in list(self._waiters.get(ns, ())):
                if (current is None or current > w.seen) and not w.woken.done():
                    w.woken.set_result(None)


@dataclass(frozen=True, slots=True)
class _Look:
    changed: bool
    seq: int  # the namespace's counter in the snapshot the look was taken from


class ChangeFeed:
    """The use cases: a cursor positioned at "now", and waiting for changes under a cursor."""

    def __init__(self, store: MetadataStore, watcher: ChangeWatcher | None = None,
                 jitter: float = DEFAULT_JITTER, cursor_key: CursorKey | None = None) -> None:
        self.store = store
        self.watcher = watcher or ChangeWatcher(store)
        self.jitter = jitter
        self.cursor_key = cursor_key or CursorKey(store)

    def start(self) -> None:
        self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()

    async def latest_cursor(
        self, caller: Caller, path: str, *, recursive: bool, include_deleted: bool, limit: int | None,
    ) -> str:
        """A cursor that lists nothing now: list_folder/continue with it returns only later changes.
        Raises PathLookupError like list_folder (not_found, not_folder, malformed_path)."""

        key = await self.cursor_key.get()

        def _cursor(tx: MetadataTx) -> str:
            ns, _, base = folder_to_list_tx(tx, caller, path)
            if mount_listing.descends_tx(tx, caller, ns, base, recursive):
                return mount_listing.latest_tx(tx, caller, include_deleted, limit or DEFAULT_LIST_LIMIT, key)
            return ListCursor(ns, base, recursive, include_deleted, limit or DEFAULT_LIST_LIMIT,
                              since=tx.current_seq(ns), upto=None, after="").encode(key)

        return await self.store.read(_cursor)

    async def longpoll(self, cursor_text: str, timeout: float) -> bool:
        """Whether something under the cursor's folder changed after the cursor: True as soon as it
        has, False after `timeout` seconds (plus jitter) without.  A cursor still paging (has_more)
        has changes at once.  Raises BadRequest for an undecodable cursor, CallError("reset") when
        its namespace no longer exists."""
        key = await self.cursor_key.get()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout + random.uniform(0, self.jitter)
        if mount_listing.is_team_cursor(cursor_text):
            team = mount_listing.TeamCursor.decode(cursor_text, key)
            if team.paging:
                return True
            while True:
                changed, seqs = await self.store.read(lambda tx: mount_listing.look_tx(tx, team))
                if changed:
                    return True
                if not await self.watcher.wait_any(seqs, deadline - loop.time()):
                    return False
        cursor = ListCursor.decode(cursor_text, key)
        if cursor.upto is not None:
            return True  # the pages of this listing are not all read yet
        while True:
            look = await self.store.read(lambda tx: _look(tx, cursor))
            if look.changed:
                return True
            if not await self.watcher.wait_beyond(cursor.namespace_id, look.seq, deadline - loop.time()):
                return False


def _look(tx: MetadataTx, cursor: ListCursor) -> _Look:
    seqs = tx.namespace_seqs([cursor.namespace_id])
    if cursor.namespace_id not in seqs:
        raise CallError("reset")
    seq = seqs[cursor.namespace_id]
    if seq <= cursor.since:
        return _Look(False, seq)
    if cursor.path_lower:
        folder = tx.get_entry(cursor.namespace_id, cursor.path_lower)
        if folder is None or folder.seq > cursor.since:
            return _Look(True, seq)  # the folder itself went or changed: continue will tell how
    below = tx.list_changes(cursor.namespace_id, cursor.path_lower, recursive=cursor.recursive,
                            since=cursor.since, upto=seq, limit=1)
    return _Look(bool(below), seq)

