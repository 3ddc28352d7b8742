"""S3BlobStore: file bytes as content-addressed 4 MiB blocks in an S3-compatible bucket.

Layout under the URL's prefix:
  blocks/<2 hex>/<64 hex>             one immutable block, named by the SHA-256 of its bytes
  staging/<session>/<index>/<length>  the partial block `index` of a sequential session, `length` bytes
  uses/<2 hex>/<64 hex>/<random>      an empty use marker, PUT just before each PUT or touch of that block
  trash/<2 hex>/<64 hex>/<random>     the collector's copy of a block while it deletes it (see below)

Same contract as LocalDiskBlobStore, shaped by what an object store can do (no append, no rename):

- Blocks are written with a plain PUT and no condition: a block is named by its content, so a re-PUT
  stores the same bytes again and is harmless; it also renews the object's LastModified, which is
  what keeps a reused block young for the collector.  The PUT has returned (the object store made
  the block durable) before the append returns, so metadata never references a block not yet stored.
- A sequential session's staged tail is one object per (block index, length), rewritten whole on each
  append (< 4 MiB).  An append from acknowledged state (index, length) reads exactly that object,
  so bytes an unacknowledged call left behind (another key) are never read, and no call ever
  overwrites the object of an acknowledged state: a stale or racing call that loses its metadata
  compare-and-set writes a key the winner's state does not name.  (Only two racing calls from the
  same state that end at the same length write the same key: the per-session lock serialises those.)
  Tails of earlier states are deleted by the next append (they can never be named again) and by
  `discard_staging`.  Nothing is kept on the node: another node can take the next append.  (Tails
  are per session and never collected while the session lives: use markers do not concern them.)
- Memory: an append holds the block it is receiving plus at most `max_inflight` blocks being PUT;
  a download holds the block slice being sent plus the next one, fetched with a Range GET.

Garbage collection (`collect`) follows the local disk's rule with LastModified for mtime: a block a
commit is about to reference was PUT (or touched by a server-side self-copy, for calls that outlive a
quarter of the grace period) less than `grace` ago, and the collector deletes only unreferenced
blocks whose LastModified, re-read by a HEAD just before the DELETE, is older than the cutoff.  S3
has no rename and no portable conditional DELETE, so a PUT (or touch) of the same old, unreferenced
content landing between the collector's HEAD and its DELETE would be lost.  Use markers close that
window across processes (other nodes, `localbox gc` beside a server) with plain unconditional calls:

- A writer first PUTs a fresh marker `uses/<digest>/<random>`, then PUTs (or touches) the block.
- The collector, for a block found old by its HEAD, copies it to `trash/<digest>/<random>`, DELETEs
  it, then LISTs `uses/<digest>/`: a marker newer than the cutoff means a write may have landed
  between the HEAD and the DELETE, so the block is copied back from the trash (kept, not deleted).
  Then the trash copy is deleted.
- A write whose PUT lands after the DELETE leaves the block in place by itself (a touch finding the
  block gone fails its call retryably, as below).  One whose PUT or touch lands
  before the DELETE wrote its marker before that PUT, so before the DELETE, so the LIST (after the
  DELETE; S3 is strongly consistent) sees it and the block is restored from the trash copy, which
  was taken before the DELETE and after the HEAD.  What remains is the few milliseconds between the
  DELETE and the restore, when the block is missing: a download of a file committed in that instant
  gets a retryable error, and nothing is lost.
- The trash key is unique per attempt, so collectors of several nodes working on the same digest
  each restore from their own copy.  A collector that dies between the DELETE and the restore leaves
  its trash copy behind: a later pass restores every trash copy older than `trash_abandoned_after`
  (older than any collector still working on it) whose digest is referenced or has a fresh marker,
  and deletes the others.  That restore is a write like any other (marker first).
- Markers older than the cutoff protect nothing any more; each pass deletes them.

Within one process the collector and the writers also exclude each other outright: a digest is
never PUT or touched while the collector works on it (the PUT waits, then writes the block anew),
and the collector skips a digest whose PUT or touch is in flight.  An append that outlives
`refresh_after` re-checks its blocks before returning.  The node clocks must
agree with the object store's within a small fraction of `grace` (cutoffs are node time, LastModified
is store time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from localbox.domain.content_hash import BLOCK_SIZE
from localbox.domain.errors import StoreUnavailable
from localbox.stores.base import BodyTooLarge, StagedAppend
from localbox.stores.s3client import S3Client, S3Location

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class S3CollectStats:
    blocks_deleted: int = 0
    bytes_freed: int = 0
    blocks_kept_young: int = 0  # unreferenced but inside the grace period
    staging_removed: int = 0  # sessions whose staged tails went
    blocks_restored: int = 0  # deleted, then put back because a write raced the DELETE (also counted kept)
    markers_removed: int = 0  # use markers older than the cutoff
    trash_restored: int = 0  # blocks put back from a trash copy an interrupted pass left behind
    trash_removed: int = 0  # such trash copies of blocks nothing protects


class S3BlobStore:
    def __init__(self, client: S3Client, prefix: str = "", *, grace: float = 3600.0, max_inflight: int = 2,
                 workers: int = 16, url: str = "s3://") -> None:
        self.client = client
        self.prefix = prefix
        self.url = url
        self.refresh_after = grace / 4
        self.max_inflight = max_inflight
        # A trash copy older than this was left by a collector that died: none still works on it (a
        # collector holds one for four S3 calls, each bounded by the client's retries and timeouts).
        self.trash_abandoned_after = 600.0
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="localbox-s3")
        # Digests being written (PUT or touch) and being collected (HEAD..DELETE), in this process.
        self._digests = threading.Condition()
        self._writing: Counter[bytes] = Counter()
        self._collecting: set[bytes] = set()

    @classmethod
    def from_url(cls, url: str, *, grace: float = 3600.0) -> S3BlobStore:
        """A store for `s3://BUCKET/PREFIX?endpoint_url=...&region=...` on botocore (imported only here).
        ValueError for a URL it cannot use, a missing botocore included (the message says what to install)."""
        location = S3Location.parse(url)
        try:
            from localbox.stores.s3botocore import BotocoreS3Client
        except ImportError as e:
            raise ValueError(f'S3 blob storage needs botocore: pip install "localbox[s3]" ({e})') from None
        return cls(BotocoreS3Client(location), location.prefix, grace=grace, url=location.display())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- keys
    def block_key(self, digest: bytes) -> str:
        h = digest.hex()
        return f"{self.prefix}blocks/{h[:2]}/{h}"

    def _uses_prefix(self, digest: bytes) -> str:
        h = digest.hex()
        return f"{self.prefix}uses/{h[:2]}/{h}/"

    def _trash_key(self, digest: bytes) -> str:
        h = digest.hex()
        return f"{self.prefix}trash/{h[:2]}/{h}/{secrets.token_hex(8)}"

    def _staging_prefix(self, staging_id: str) -> str:
        return f"{self.prefix}staging/{staging_id}/"

    def _tail_key(self, staging_id: str, index: int, length: int) -> str:
        return f"{self._staging_prefix(staging_id)}{index}/{length}"

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    # -- blocking helpers (pool threads)
    @contextlib.contextmanager
    def _writing_block(self, digest: bytes) -> Iterator[None]:
        """Held around a PUT or touch of `digest`: waits while the collector is deleting it."""
        with self._digests:
            self._digests.wait_for(lambda: digest not in self._collecting)
            self._writing[digest] += 1
        try:
            yield
        finally:
            with self._digests:
                self._writing[digest] -= 1
                if not self._writing[digest]:
                    del self._writing[digest]

    def _mark_use(self, digest: bytes) -> None:
        """Before any write of a block: tells a collector in another process that it must not delete it."""
        self.client.put(self._uses_prefix(digest) + secrets.token_hex(8), b"")

    def _store_block(self, data: bytearray) -> bytes:
        digest = hashlib.sha256(data).digest()
        with self._writing_block(digest):
            self._mark_use(digest)
            self.client.put(self.block_key(digest), data)
        return digest

    def _refresh(self, digests: Sequence[bytes]) -> None:
        for d in digests:
            with self._writing_block(d):
                self._mark_use(d)
                renewed = self.client.touch(self.block_key(d))
            if not renewed:
                # Collected while this call ran (it outlived the grace period): nothing references it
                # yet, so failing the call retryably loses nothing.
                raise StoreUnavailable(f"block {d.hex()} was collected during a slow upload; retry")

    def _drop_states_before(self, staging_id: str, index: int, length: int) -> None:
        """Delete this session's tails of states before (index, length): no call can name them again."""
        for obj in self.client.list(self._staging_prefix(staging_id)):
            state = _tail_state(obj.key)
            if state is not None and state < (index, length):
                self.client.delete(obj.key)

    # -- the BlobStore protocol
    async def append_staged(
        self, staging_id: str, block_index: int, tail_length: int,
        chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
        seal: bool = False,
    ) -> StagedAppend:
        """See BlobStore.append_staged."""
        buf = bytearray()
        cleanup: asyncio.Future[None] | None = None
        if tail_length:
            prefix = await self._run(self.client.get, self._tail_key(staging_id, block_index, tail_length))
            if prefix is None or len(prefix) != tail_length:
                raise OSError(f"staged tail {block_index}/{tail_length} of {staging_id} is missing or short")
            buf += prefix
            del prefix
            cleanup = asyncio.ensure_future(
                self._run(self._drop_states_before, staging_id, block_index, tail_length))
        try:
            blocks, buf, received = await self._stream(chunks, limit, tap, buf, seal)
            index = block_index + len(blocks)
            if buf and (index, len(buf)) != (block_index, tail_length):
                await self._run(self.client.put, self._tail_key(staging_id, index, len(buf)), buf)
        finally:
            if cleanup is not None:
                # Best effort: leftovers are removed by the next append or discard_staging anyway.
                with contextlib.suppress(Exception):
                    await cleanup
        return StagedAppend(blocks, len(buf), hashlib.sha256(buf).digest(), received)

    async def _stream(
        self, chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None,
        buf: bytearray, seal: bool,
    ) -> tuple[tuple[bytes, ...], bytearray, int]:
        """Cut the stream (after `buf`) into blocks PUT as they complete; returns (digests, rest, received).
        With `seal`, the rest becomes a block too."""
        stored: list[asyncio.Future[bytes]] = []
        received = 0
        started = time.monotonic()
        try:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge()
                if tap is not None:
                    tap(chunk)
                view = memoryview(chunk)
                while view.nbytes:
                    take = min(BLOCK_SIZE - len(buf), view.nbytes)
                    buf += view[:take]
                    view = view[take:]
                    if len(buf) == BLOCK_SIZE:
                        if len(stored) >= self.max_inflight:
                            await stored[-self.max_inflight]  # bound memory: a few blocks per call
                        if time.monotonic() - started > self.refresh_after and len(stored) >= self.max_inflight:
                            done = [f.result() for f in stored[: len(stored) - self.max_inflight + 1]]
                            await self._run(self._refresh, done)  # a slow client: keep its blocks young
                            started = time.monotonic()
                        stored.append(asyncio.ensure_future(self._run(self._store_block, buf)))
                        buf = bytearray()
            if seal and buf:
                stored.append(asyncio.ensure_future(self._run(self._store_block, buf)))
                buf = bytearray()
            results = tuple(await asyncio.gather(*stored))
            stored = []
            if time.monotonic() - started > self.refresh_after:
                await self._run(self._refresh, results)
            return results, buf, received
        finally:
            if stored:
                await asyncio.gather(*stored, return_exceptions=True)

    async def put_blocks(
        self, chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
    ) -> tuple[tuple[bytes, ...], int]:
        blocks, _, received = await self._stream(chunks, limit, tap, bytearray(), True)
        return blocks, received

    async def open(self, blocks: Sequence[bytes], size: int, start: int, end: int) -> AsyncIterator[bytes]:
        slices: list[tuple[bytes, int, int]] = []  # (digest, start within the block, end within it)
        pos = start
        while pos < end:
            index, within = divmod(pos, BLOCK_SIZE)
            stop = min(BLOCK_SIZE, within + end - pos)
            slices.append((blocks[index], within, stop))
            pos += stop - within
        if not slices:
            return
        # One Range GET per block slice, the next one fetched while this one is sent.
        pending = asyncio.ensure_future(self._fetch(*slices[0]))
        try:
            for i in range(len(slices)):
                data = await pending
                if i + 1 < len(slices):
                    pending = asyncio.ensure_future(self._fetch(*slices[i + 1]))
                yield data
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending

    async def _fetch(self, digest: bytes, start: int, stop: int) -> bytes:
        data = await self._run(self.client.get, self.block_key(digest), start, stop)
        if data is None or len(data) != stop - start:
            raise OSError(f"block {digest.hex()} is missing or shorter than expected")
        return data

    def check(self) -> None:
        """At `serve` start: raise StoreUnavailable, with a one-line reason, when the endpoint does not
        answer, the bucket is missing or the credentials are refused (instead of the first request failing)."""
        self.client.check(self.prefix)

    async def probe(self) -> None:
        """Readiness: the same single read-only LIST as check(); no PUT per probe."""
        await self._run(self.client.check, self.prefix)

    async def discard_staging(self, staging_id: str, below_index: int | None = None) -> None:
        await self._run(self._discard, staging_id, below_index)

    def _discard(self, staging_id: str, below_index: int | None) -> None:
        for obj in list(self.client.list(self._staging_prefix(staging_id))):
            state = _tail_state(obj.key)
            if below_index is None or (state is not None and state[0] < below_index):
                self.client.delete(obj.key)

    # -- garbage collection (CollectableBlobStore)
    def collect(self, referenced: Collection[bytes], live_staging: Collection[str], cutoff: float) -> S3CollectStats:
        """Delete blocks not in `referenced` last written before `cutoff` (a time.time() value), and
        the staged tails of sessions not in `live_staging` untouched since `cutoff`.

        `referenced` and `live_staging` must come from a metadata snapshot read after `cutoff` was
        taken (see the module docstring).  Blocking: run it in a thread.
        """
        stats = S3CollectStats()
        marked = self._sweep_markers(cutoff, stats)
        self._recover_trash(set(referenced) | marked, stats)
        for obj in self.client.list(f"{self.prefix}blocks/"):
            try:
                digest = bytes.fromhex(obj.key.rsplit("/", 1)[-1])
            except ValueError:
                continue
            if digest in referenced:
                continue
            if obj.modified >= cutoff:
                stats.blocks_kept_young += 1
                continue
            with self._digests:
                if digest in self._writing:  # being PUT again right now: it is young
                    stats.blocks_kept_young += 1
                    continue
                self._collecting.add(digest)
            try:
                fresh = self.client.head(obj.key)  # a PUT since the listing renewed it
                if fresh is None:
                    continue
                if fresh.modified >= cutoff:
                    stats.blocks_kept_young += 1
                    continue
                outcome = self._delete_unless_used(digest, cutoff)
                if outcome is None:  # gone already: another collector deleted it
                    continue
                if outcome == "restored":
                    stats.blocks_kept_young += 1
                    stats.blocks_restored += 1
                    continue
            finally:
                with self._digests:
                    self._collecting.discard(digest)
                    self._digests.notify_all()
            stats.blocks_deleted += 1
            stats.bytes_freed += fresh.size
        newest: dict[str, float] = {}
        root = f"{self.prefix}staging/"
        for obj in self.client.list(root):
            session = obj.key[len(root):].split("/", 1)[0]
            newest[session] = max(newest.get(session, 0.0), obj.modified)
        for session, modified in newest.items():
            if session not in live_staging and modified < cutoff:
                self._discard(session, None)
                stats.staging_removed += 1
        return stats

    def _delete_unless_used(self, digest: bytes, cutoff: float) -> str | None:
        """Delete an old block unless a write raced the HEAD that found it old (module docstring):
        "deleted", "restored", or None if it was gone.  An error leaves the trash copy for a later pass."""
        key = self.block_key(digest)
        trash = self._trash_key(digest)
        if not self.client.copy(key, trash):
            return None
        self.client.delete(key)
        if any(m.modified >= cutoff for m in self.client.list(self._uses_prefix(digest))):
            self._mark_use(digest)  # a write like any other, for collectors of other processes
            if not self.client.copy(trash, key):
                raise OSError(f"trash copy {trash} of a used block vanished")
            outcome = "restored"
        else:
            outcome = "deleted"
        self.client.delete(trash)
        return outcome

    def _sweep_markers(self, cutoff: float, stats: S3CollectStats) -> set[bytes]:
        """Delete use markers older than the cutoff; the digests that have a newer one."""
        marked: set[bytes] = set()
        for obj in list(self.client.list(f"{self.prefix}uses/")):
            digest = _digest_of(obj.key, 2)
            if obj.modified >= cutoff and digest is not None:
                marked.add(digest)
            elif obj.modified < cutoff:
                self.client.delete(obj.key)
                stats.markers_removed += 1
        return marked

    def _recover_trash(self, protected: Collection[bytes], stats: S3CollectStats) -> None:
        """Trash copies a dead collector left: put back those of protected digests, delete the rest."""
        horizon = time.time() - self.trash_abandoned_after
        for obj in list(self.client.list(f"{self.prefix}trash/")):
            if obj.modified >= horizon:
                continue  # a collector may be working on it right now
            digest = _digest_of(obj.key, 2)
            if digest is not None and digest in protected:
                with self._writing_block(digest):
                    self._mark_use(digest)
                    self.client.copy(obj.key, self.block_key(digest))
                stats.trash_restored += 1
            else:
                stats.trash_removed += 1
            self.client.delete(obj.key)


def _digest_of(key: str, from_end: int) -> bytes | None:
    """The digest named by a key's component `from_end` places from its end (1: the last one)."""
    parts = key.rsplit("/", from_end)
    try:
        digest = bytes.fromhex(parts[-from_end]) if len(parts) > from_end else None
    except ValueError:
        return None
    return digest if digest is not None and len(digest) == 32 else None


def _tail_state(key: str) -> tuple[int, int] | None:
    """(block index, length) from a staging key's last two components."""
    parts = key.rsplit("/", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2])
