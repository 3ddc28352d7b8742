"""MemoryBlobStore: file bytes in process memory, for throwaway servers (`serve --memory`, tests).

Same contract as LocalDiskBlobStore (content-addressed 4 MiB blocks, a per-session staged tail whose
unacknowledged bytes are dropped by the next append), with nothing on disk: a restart forgets all.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence

from localbox.domain.content_hash import BLOCK_SIZE
from localbox.stores.base import BodyTooLarge, StagedAppend


class MemoryBlobStore:
    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}
        # staging id -> block index -> that partial block's bytes.  An acknowledged tail stays until
        # discard_staging, as on disk: an append that fails after completing its block must not lose it.
        self._tails: dict[str, dict[int, bytearray]] = {}

    def clear(self) -> None:
        """Forget every block and staged tail (a full reset of a memory-mode server)."""
        self.blocks.clear()
        self._tails.clear()

    def _store(self, data: bytes | bytearray) -> bytes:
        digest = hashlib.sha256(data).digest()
        self.blocks.setdefault(digest, bytes(data))
        return digest

    async def append_staged(
        self, staging_id: str, block_index: int, tail_length: int,
        chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
        seal: bool = False,
    ) -> StagedAppend:
        tails = self._tails.setdefault(staging_id, {})
        # Bytes past the acknowledged tail come from a call whose outcome the client never saw.
        buf = bytearray(tails.get(block_index, b"")[:tail_length])
        index = block_index
        new_blocks: list[bytes] = []
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge()
            if tap is not None:
                tap(chunk)
            buf += chunk
            while len(buf) >= BLOCK_SIZE:
                new_blocks.append(self._store(buf[:BLOCK_SIZE]))
                del buf[:BLOCK_SIZE]
                index += 1
        if seal and buf:
            new_blocks.append(self._store(buf))
            buf = bytearray()
        if buf:
            tails[index] = buf
        elif not tails:
            del self._tails[staging_id]
        return StagedAppend(tuple(new_blocks), len(buf), hashlib.sha256(buf).digest(), received)

    async def put_blocks(
        self, chunks: AsyncIterator[bytes], limit: int, tap: Callable[[bytes], None] | None = None,
    ) -> tuple[tuple[bytes, ...], int]:
        staging_id = f"put-{id(chunks)}"
        try:
            staged = await self.append_staged(staging_id, 0, 0, chunks, limit, tap, seal=True)
        finally:
            self._tails.pop(staging_id, None)
        return staged.new_blocks, staged.received

    async def open(self, blocks: Sequence[bytes], size: int, start: int, end: int) -> AsyncIterator[bytes]:
        pos = start
        while pos < end:
            index, within = divmod(pos, BLOCK_SIZE)
            data = self.blocks[blocks[index]][within : within + (end - pos)]
            if not data:
                raise OSError(f"block {blocks[index].hex()} is shorter than expected")
            pos += len(data)
            yield data

    async def probe(self) -> None:
        """In memory: always ready."""

    async def discard_staging(self, staging_id: str, below_index: int | None = None) -> None:
        if below_index is None:
            self._tails.pop(staging_id, None)
            return
        tails = self._tails.get(staging_id, {})
        for index in [i for i in tails if i < below_index]:
            del tails[index]
