"""Dropbox content hash: SHA-256 over the concatenated SHA-256 digests of 4 MiB blocks.

See https://www.dropbox.com/developers/reference/content-hash.  Empty content has no blocks,
so its hash is sha256(b"").  localbox stores files as 4 MiB blocks named by their SHA-256, so a
file's content hash is computed from the stored block digests without reading any bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

BLOCK_SIZE = 4 * 1024 * 1024


def hash_from_digests(digests: Iterable[bytes]) -> str:
    """The content hash of a file whose 4 MiB blocks have the given raw SHA-256 digests."""
    outer = hashlib.sha256()
    for d in digests:
        outer.update(d)
    return outer.hexdigest()


class ContentHasher:
    """Incremental content hash over a stream of arbitrary-sized chunks."""

    __slots__ = ("_block", "_block_len", "_digests")

    def __init__(self) -> None:
        self._digests: list[bytes] = []
        self._block = hashlib.sha256()
        self._block_len = 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view.nbytes:
            take = min(BLOCK_SIZE - self._block_len, view.nbytes)
            self._block.update(view[:take])
            self._block_len += take
            view = view[take:]
            if self._block_len == BLOCK_SIZE:
                self._digests.append(self._block.digest())
                self._block = hashlib.sha256()
                self._block_len = 0

    def hexdigest(self) -> str:
        tail = [self._block.digest()] if self._block_len else []
        return hash_from_digests([*self._digests, *tail])


def content_hash(data: bytes) -> str:
    h = ContentHasher()
    h.update(data)
    return h.hexdigest()
