"""Appends to one sequential upload session from several nodes (#5).

Within a node, a per-session asyncio lock serializes appends (upload_sessions.py).  Across nodes, the
staged tail of a session is shared (a file on a shared folder, or objects in S3), so two nodes must
not write it at once either: `SessionLeases.hold` takes the session's lease in the metadata store
(MetadataTx.lock_session, a compare-and-set on the session row) for the duration of the append,
waiting while another node holds it.  The loser of a race then reloads the session and answers
incorrect_offset, exactly as in one process.  A node that dies mid-append stops renewing its lease,
which lapses after `lease` seconds.  One-node stores use NoSessionLeases (no extra transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from functools import partial

from localbox.domain.errors import StoreUnavailable
from localbox.stores.base import MetadataStore, MetadataTx


def _lock(tx: MetadataTx, session_id: str, owner: str, now: float, until: float) -> bool:
    # No such session: nothing to guard (the caller's lookup answers not_found).
    return tx.lock_session(session_id, owner, now, until) or tx.get_session(session_id) is None


def _unlock(tx: MetadataTx, session_id: str, owner: str) -> None:
    tx.unlock_session(session_id, owner)


class NoSessionLeases:
    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        yield


class SessionLeases:
    def __init__(self, store: MetadataStore, *, lease: float = 30.0, wait: float = 0.02) -> None:
        self.store = store
        self.lease = lease
        self.wait = wait

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        owner = f"{secrets.token_hex(8)}"  # this call, not this node: two calls of one node exclude too
        deadline = time.monotonic() + 2 * self.lease + 5
        while True:
            now = time.time()
            if await self.store.run(partial(_lock, session_id=session_id, owner=owner, now=now,
                                            until=now + self.lease)):
                break
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"upload session {session_id[:24]}... stays locked by another node")
            await asyncio.sleep(self.wait)
        renewer = asyncio.create_task(self._renew(session_id, owner))
        try:
            yield
        finally:
            renewer.cancel()
            await asyncio.shield(self.store.run(partial(_unlock, session_id=session_id, owner=owner)))

    async def _renew(self, session_id: str, owner: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            now = time.time()
            with contextlib.suppress(StoreUnavailable):
                await self.store.run(partial(_lock, session_id=session_id, owner=owner, now=now,
                                             until=now + self.lease))
