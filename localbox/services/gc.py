"""Garbage collection: forget old revisions, then reclaim blocks and staged bytes nothing refers to.

Retention (our choice; Dropbox keeps deleted files and old versions restorable for 30 days on its
basic plans): a version of a file that was replaced or deleted stays readable by `rev:`, restorable
and listed by list_revisions for `revision_retention` after it stopped being current, then it is
forgotten.  Deletion markers stay (list_folder cursors report them) but hold no bytes.  Blocks are
reclaimed once no live file, kept version or open upload session refers to them and they have not
been used for `grace` (see stores/localdisk.py for why that is safe while commits run).  Expired
upload sessions are forgotten by the session sweep; their staged tails and blocks go here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from localbox.stores.base import BlobStore, CollectableBlobStore, MetadataStore, MetadataTx

log = logging.getLogger("localbox.gc")


@dataclass(frozen=True, slots=True)
class GcReport:
    revisions_expired: int
    blob_stats: Any  # the blob store's own counters (None when it cannot collect)


def _snapshot(tx: MetadataTx) -> tuple[set[bytes], set[str]]:
    return tx.referenced_blocks(), tx.open_session_ids()


class GarbageCollector:
    def __init__(self, store: MetadataStore, blobs: BlobStore, *, grace: float, revision_retention: float) -> None:
        self.store = store
        self.blobs = blobs
        self.grace = grace
        self.revision_retention = revision_retention
        self._lock = asyncio.Lock()

    async def run_once(self) -> GcReport:
        async with self._lock:  # one pass at a time in this process
            before = time.time() - self.revision_retention
            expired = await self.store.run(lambda tx: tx.expire_revisions(before))
            if not isinstance(self.blobs, CollectableBlobStore):
                return GcReport(expired, None)
            # The cutoff is taken before the snapshot is read: a commit after the snapshot can only
            # reference a block used after the cutoff.
            cutoff = time.time() - self.grace
            referenced, live = await self.store.read(_snapshot)
            stats = await asyncio.get_running_loop().run_in_executor(
                None, self.blobs.collect, referenced, live, cutoff)
            return GcReport(expired, stats)
