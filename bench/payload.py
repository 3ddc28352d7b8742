"""Upload payloads: one pre-allocated buffer, unique per 4 MiB block and per round.

Uniqueness matters because a content-addressed store could deduplicate repeated blocks and look faster than
it is.  ``os.urandom`` of 1 GiB takes ~4 s here, so blocks are cut at distinct offsets of a 20 MiB random
pool instead (distinct offsets of random data give distinct blocks), then stamped with the round number.
"""

from __future__ import annotations

import os
import struct

BLOCK = 4 * 1024 * 1024
_POOL = 16 * 1024 * 1024
_cache: dict[int, bytearray] = {}


def big_buffer(size: int) -> bytearray:
    """A ``size``-byte buffer of random-looking blocks, built once per process and size."""
    buf = _cache.get(size)
    if buf is None:
        pool = memoryview(os.urandom(_POOL + BLOCK))
        buf = bytearray(size)
        view = memoryview(buf)
        for index, start in enumerate(range(0, size, BLOCK)):
            offset = (index * 65537) % _POOL
            length = min(BLOCK, size - start)
            view[start : start + length] = pool[offset : offset + length]
        _cache[size] = buf
    return buf


def stamp(buf: bytearray, round_id: int, tag: int = 0) -> None:
    """Makes every block of ``buf`` differ from the previous round's (24 bytes per block, in place)."""
    for index, start in enumerate(range(0, len(buf), BLOCK)):
        if start + 24 <= len(buf):
            buf[start : start + 24] = struct.pack("<QQQ", round_id, tag, index)


class SmallBodies:
    """Distinct small bodies (``size`` bytes), cheap to make: a random template with an index stamped in."""

    def __init__(self, size: int) -> None:
        self._template = os.urandom(size)

    def body(self, tag: int, index: int) -> bytes:
        return struct.pack("<QQ", tag, index) + self._template[16:]
