"""LocalDiskBlobStore: file bytes as content-addressed 4 MiB blocks on a local file system.

Layout under the root folder:
  blocks/<2 hex>/<64 hex>      one immutable block, named by the SHA-256 of its bytes
  staging/<session>/<index>    the partial block `index` of a sequential session (the "tail")
  tmp/                         blocks being copied into place

How it works: an append streams into the session's tail file; every time the tail reaches 4 MiB it
is fsync'd and moved (renamed) into blocks/, so a file is just its ordered list of block digests and
a commit never touches bytes.  A tail that already holds acknowledged bytes from an earlier call is
never renamed away before the metadata that acknowledges the new state is committed: such a block
is copied into place (at most 4 MiB, once per block) and the tail stays until `discard_staging`.
Durability: blocks and tails are fsync'd, and so are the directories that gained names, before an
append returns.  Identical blocks are stored once.

Garbage collection (`collect`) and its safety rule: a block's mtime is the last time a call wrote or
reused it (a reuse of an identical block touches it), and a call that outlives a quarter of the
grace period touches its blocks again before it returns.  So a block that a commit is about to
reference is always younger than `grace`, and the collector deletes only blocks that are both
unreferenced (in a metadata snapshot taken after its cutoff) and older than `grace`.  It deletes by
renaming into tmp/ first and re-checking the mtime there: a reuse that touched the block just before
the rename is seen, and the block is put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localbox.domain.content_hash import BLOCK_SIZE
from localbox.domain.errors import StoreUnavailable
from localbox.stores.base import BodyTooLarge, StagedAppend

_READ_CHUNK = 1024 * 1024


_Stamp = tuple[int, int, int]  # (inode, size, mtime in ns) of a tail file


def _file_stamp(fd: int) -> _Stamp:
    st = os.fstat(fd)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _stamp_tail(fd: int) -> _Stamp | None:
    """Mark the tail file as written by this call: an mtime whose sub-second part is random, set
    explicitly (the kernel's own mtimes are only as fine as its clock tick, so two writes in one tick,
    by two nodes, could not be told apart).  None when the file system rounds the mark away: its tails
    are then always re-hashed from the file."""
    now = time.time_ns()
    mark = now - now % 1_000_000_000 + secrets.randbelow(1_000_000_000)
    os.utime(fd, ns=(mark, mark))
    stamp = _file_stamp(fd)
    return stamp if stamp[2] == mark else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _space_errors() -> Iterator[None]:
    """A full disk is a retryable condition for clients, not a bug: report it as StoreUnavailable."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreUnavailable("insufficient space for file data") from e
        raise


def _fsync_dirs(dirs: set[Path]) -> None:
    for d in dirs:
        _fsync_dir(d)


def _copy_prefix(src: int, dst: int, length: int) -> None:
    done = 0
    while done < length:
        n = os.copy_file_range(src, dst, length - done, done, done)
        if n == 0:
            raise OSError("short copy of a staged block")
        done += n


def _write_all(fd: int, data: memoryview) -> None:
    while data.nbytes:
        n = os.write(fd, data)
        data = data[n:]


@dataclass(slots=True)
class CollectStats:
    blocks_deleted: int = 0
    bytes_freed: int = 0
    blocks_kept_young: int = 0  # unreferenced but inside the grace period
    staging_removed: int = 0
    tmp_removed: int = 0


def _touch(path: Path) -> bool:
    """Mark a block as just used; False when it no longer exists."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False


class LocalDiskBlobStore:
    def __init__(self, root: Path, grace: float = 3600.0) -> None:
        self.root = root
        # Calls that run longer than this re-touch their blocks, so that none is ever older than the
        # collector's grace period before the metadata that references it is committed.
        self.refresh_after = grace / 4
        self.blocks_dir = root / "blocks"
        self.staging_dir = root / "staging"
        self.tmp_dir = root / "tmp"
        for d in (self.blocks_dir, self.staging_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        # Hash state of each session's tail, so appends don't re-read what earlier appends wrote.  Only an
        # optimisation, and the folder may be shared by several nodes (#5): an entry counts only for the
        # same (index, length) *and* the same write of the file, recognised by the stamp that write left
        # (_stamp_tail); anything else (another node wrote the tail since) rebuilds it from the file.
        self._tail_hashers: dict[str, tuple[int, int, Any, _Stamp]] = {}

    # -- paths
    def block_path(self, digest: bytes) -> Path:
        h = digest.hex()
        return self.blocks_dir / h[:2] / h

    def _tail_path(self, staging_id: str, index: int) -> Path:
        return self.staging_dir / staging_id / str(index)

    def _ensure_fanout(self, folder: Path) -> None:
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            _fsync_dir(self.blocks_dir)

    # -- block placement (runs in worker threads)
    def _store_block(self, prefix_fd: int | None, prefix_len: int, hasher: Any, data: bytearray) -> bytes:
        """Finish a block: hash `data` onto `hasher` and make [prefix of the tail file] + data durable
        under the digest, which it returns."""
        hasher.update(data)
        digest: bytes = hasher.digest()
        dest = self.block_path(digest)
        if _touch(dest):
            return digest  # identical block already stored (and fsync'd before it was named)
        self._ensure_fanout(dest.parent)
        tmp = self.tmp_dir / secrets.token_hex(12)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                if prefix_fd is not None:
                    _copy_prefix(prefix_fd, out, prefix_len)
                    os.lseek(out, prefix_len, os.SEEK_SET)  # copy_file_range with offsets leaves it at 0
                _write_all(out, memoryview(data))
                os.fsync(out)
            finally:
                os.close(out)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk must not keep the space of a half-written block
            raise
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)  # the new name is durable before the append is acknowledged
        return digest

    @staticmethod
    def _extend_tail(path: Path, acked: int, hasher: Any, data: bytearray, new_dirs: set[Path]) -> _Stamp | None:
        """Append unacknowledged bytes after the acknowledged prefix of a tail file, durably; returns the
        stamp of this write (None where the file system cannot keep one)."""
        hasher.update(data)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, acked)  # bytes of an earlier call that was never acknowledged go first
            view = memoryview(data)
            pos = acked
            while view.nbytes:
                n = os.pwrite(fd, view, pos)
                view = view[n:]
                pos += n
            stamp = _stamp_tail(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not acked:
            new_dirs.add(path.parent)  # the tail file's name is new
        _fsync_dirs(new_dirs)
        return stamp

    def _hasher_for(self, staging_id: str, index: int, tail_length: int, fd: int) -> Any:
        cached = self._tail_hashers.get(staging_id)
        if cached is not None and cached[0] == index and cached[1] == tail_length and cached[3] == _file_stamp(fd):
            return cached[2].copy()
        h = hashlib.sha256()
        done = 0
        while done < tail_length:
            data = os.pread(fd, min(_READ_CHUNK, tail_length - done), done)
            if not data:
                raise OSError(f"staged tail of {staging_id} is shorter than recorded")
            h.update(data)
            done += len(data)
        return h

    # -- the BlobStore protocol
    async def append_staged(
        self, staging_id: str, block_index: int, tail_length: int,
        chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
        seal: bool = False,
    ) -> StagedAppend:
        """See BlobStore.append_staged."""
        with _space_errors():
            return await self._append_staged(staging_id, block_index, tail_length, chunks, limit, tap, seal)

    async def _append_staged(
        self, staging_id: str, block_index: int, tail_length: int,
        chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None, seal: bool,
    ) -> StagedAppend:
        # The event loop only receives and buffers; hashing and writing a completed block run in a
        # worker thread (hashlib and os.write release the GIL), overlapping with the next block's receive.
        loop = asyncio.get_running_loop()
        index, acked = block_index, tail_length
        prefix_fds: list[int] = []
        prefix_fd: int | None = None
        if acked:
            prefix_fd = os.open(self._tail_path(staging_id, index), os.O_RDONLY)
            prefix_fds.append(prefix_fd)
            hasher = self._hasher_for(staging_id, index, acked, prefix_fd)
        else:
            hasher = hashlib.sha256()
        buf = bytearray()
        room = BLOCK_SIZE - acked
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
                    take = min(room - len(buf), view.nbytes)
                    buf += view[:take]
                    view = view[take:]
                    if len(buf) == room:
                        if len(stored) >= 2:
                            await stored[-2]  # bound memory: at most two blocks in flight per request
                        if time.monotonic() - started > self.refresh_after and len(stored) >= 2:
                            # A slow client: keep this call's earlier blocks young for the collector.
                            await loop.run_in_executor(None, self._refresh, [f.result() for f in stored[:-1]])
                            started = time.monotonic()
                        stored.append(loop.run_in_executor(None, self._store_block, prefix_fd, acked, hasher, buf))
                        index, acked, prefix_fd, room = index + 1, 0, None, BLOCK_SIZE
                        hasher, buf = hashlib.sha256(), bytearray()
            tail = acked + len(buf)
            if seal and tail:
                stored.append(loop.run_in_executor(None, self._store_block, prefix_fd, acked, hasher, buf))
                hasher, tail = hashlib.sha256(), 0
            results = await asyncio.gather(*stored)
            stored = []
            if time.monotonic() - started > self.refresh_after:
                await loop.run_in_executor(None, self._refresh, results)
            if buf and not seal:
                sdir = self.staging_dir / staging_id
                new_dirs: set[Path] = set()
                if not sdir.is_dir():
                    sdir.mkdir(exist_ok=True)
                    new_dirs.add(self.staging_dir)
                stamp = await loop.run_in_executor(None, self._extend_tail, self._tail_path(staging_id, index),
                                                   acked, hasher, buf, new_dirs)
                if stamp is not None:
                    self._tail_hashers[staging_id] = (index, tail, hasher.copy(), stamp)
                else:
                    self._tail_hashers.pop(staging_id, None)
            elif seal or not tail:
                self._tail_hashers.pop(staging_id, None)
        finally:
            if stored:
                await asyncio.gather(*stored, return_exceptions=True)
            for fd in prefix_fds:
                os.close(fd)
        return StagedAppend(tuple(results), tail, hasher.digest(), received)

    def _refresh(self, digests: Sequence[bytes]) -> None:
        for d in digests:
            if not _touch(self.block_path(d)):
                # Collected while this call ran (it outlived the grace period): nothing references it yet,
                # so failing the call retryably loses nothing.
                raise StoreUnavailable(f"block {d.hex()} was collected during a slow upload; retry")

    async def put_blocks(
        self, chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
    ) -> tuple[tuple[bytes, ...], int]:
        staging_id = "put-" + secrets.token_hex(12)
        try:
            staged = await self.append_staged(staging_id, 0, 0, chunks, limit, tap, seal=True)
        finally:
            await self.discard_staging(staging_id)
        return staged.new_blocks, staged.received

    async def open(self, blocks: Sequence[bytes], size: int, start: int, end: int) -> AsyncIterator[bytes]:
        # Plain reads on the event loop (page cache): measured faster than handing each read to a
        # thread, whose hop costs more than the read it saves.
        pos = start
        while pos < end:
            index, within = divmod(pos, BLOCK_SIZE)
            remaining = min(end - pos, BLOCK_SIZE - within)
            with open(self.block_path(blocks[index]), "rb", buffering=0) as f:
                f.seek(within)
                while remaining:
                    data = f.read(min(remaining, _READ_CHUNK))
                    if not data:
                        raise OSError(f"block {blocks[index].hex()} is shorter than expected")
                    remaining -= len(data)
                    pos += len(data)
                    yield data

    async def probe(self) -> None:
        """Readiness without writing: the store's folders are still folders this process may write in
        (a disk that is full is not seen; a write per probe would cost more than it tells)."""
        for d in (self.blocks_dir, self.staging_dir, self.tmp_dir):
            if not d.is_dir() or not os.access(d, os.W_OK | os.X_OK):
                raise OSError(f"{d} is not a writable folder")

    async def discard_staging(self, staging_id: str, below_index: int | None = None) -> None:
        sdir = self.staging_dir / staging_id
        if below_index is None:
            self._tail_hashers.pop(staging_id, None)
        try:
            names = os.listdir(sdir)
        except FileNotFoundError:
            return
        for name in names:
            if below_index is None or (name.isdigit() and int(name) < below_index):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sdir / name)
        if below_index is None:
            with contextlib.suppress(OSError):
                os.rmdir(sdir)

    # -- garbage collection
    def collect(self, referenced: Collection[bytes], live_staging: Collection[str], cutoff: float) -> CollectStats:
        """Delete blocks not in `referenced` and last used before `cutoff` (a time.time() value), staging
        folders of sessions not in `live_staging` untouched since `cutoff`, and stale temporary files.

        `referenced` and `live_staging` must come from a metadata snapshot read after `cutoff` was taken
        (see the module docstring for why that is safe while commits run).  Blocking: run it in a thread.
        """
        stats = CollectStats()
        for fan in _listdir(self.blocks_dir):
            for name in _listdir(self.blocks_dir / fan):
                try:
                    digest = bytes.fromhex(name)
                except ValueError:
                    continue
                if digest in referenced:
                    continue
                self._collect_block(self.blocks_dir / fan / name, cutoff, stats)
        for name in _listdir(self.staging_dir):
            if name in live_staging:
                continue
            folder = self.staging_dir / name
            if _newest_mtime(folder) < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                self._tail_hashers.pop(name, None)
                stats.staging_removed += 1
        for name in _listdir(self.tmp_dir):
            path = self.tmp_dir / name
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    stats.tmp_removed += 1
        return stats

    def _collect_block(self, path: Path, cutoff: float, stats: CollectStats) -> None:
        try:
            if path.stat().st_mtime >= cutoff:
                stats.blocks_kept_young += 1
                return
            trash = self.tmp_dir / ("gc-" + path.name)
            os.rename(path, trash)
        except FileNotFoundError:
            return
        st = trash.stat()
        if st.st_mtime >= cutoff:
            # A call reused the block between our check and the rename: put it back.
            os.replace(trash, path)
            stats.blocks_kept_young += 1
            return
        trash.unlink()
        stats.blocks_deleted += 1
        stats.bytes_freed += st.st_size


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _newest_mtime(folder: Path) -> float:
    newest = 0.0
    with contextlib.suppress(FileNotFoundError):
        newest = folder.stat().st_mtime
        for name in os.listdir(folder):
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, (folder / name).stat().st_mtime)
    return newest
