"""LocalDiskBlobStore.collect: what it reclaims, what it keeps, and the race with a reuse of a block."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localbox.domain.errors import StoreUnavailable
from localbox.stores import localdisk
from localbox.stores.localdisk import LocalDiskBlobStore

OLD = time.time() - 10 * 86400


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _put(store: LocalDiskBlobStore, data: bytes) -> bytes:
    [digest], _ = asyncio.run(store.put_blocks(_chunks(data), 1 << 30))
    return digest


def _age(path: Path) -> None:
    os.utime(path, (OLD, OLD))


def test_collect_deletes_only_old_unreferenced_blocks(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    kept, dead, young = (_put(store, d) for d in (b"kept", b"dead", b"young"))
    for d in (kept, dead):
        _age(store.block_path(d))
    stats = store.collect({kept}, set(), cutoff=time.time() - 3600)
    assert stats.blocks_deleted == 1 and stats.bytes_freed == 4 and stats.blocks_kept_young == 1
    assert store.block_path(kept).exists() and store.block_path(young).exists()
    assert not store.block_path(dead).exists()
    assert os.listdir(store.tmp_dir) == []


def test_a_reused_block_is_young_again(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    d = _put(store, b"same bytes")
    _age(store.block_path(d))
    assert _put(store, b"same bytes") == d  # identical content: no new file, but the old one is touched
    assert store.collect(set(), set(), cutoff=time.time() - 3600).blocks_deleted == 0
    assert store.block_path(d).exists()


def test_a_reuse_racing_the_collector_keeps_the_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reuse lands between the collector's age check and its rename: the block is put back."""
    store = LocalDiskBlobStore(tmp_path)
    d = _put(store, b"raced")
    path = store.block_path(d)
    _age(path)
    real_rename = os.rename

    def rename_after_reuse(src: object, dst: object) -> None:
        os.utime(path)  # what _store_block does for an identical block, at the worst moment
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(localdisk.os, "rename", rename_after_reuse)
    stats = store.collect(set(), set(), cutoff=time.time() - 3600)
    assert stats.blocks_deleted == 0 and path.read_bytes() == b"raced"


def test_dead_staging_and_temporary_files_go(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    for name in ("live-session", "dead-session", "fresh-session"):
        asyncio.run(store.append_staged(name, 0, 0, _chunks(b"tail"), 1 << 20))
    for name in ("live-session", "dead-session"):
        _age(store.staging_dir / name / "0")
        _age(store.staging_dir / name)
    stray = store.tmp_dir / "stray"
    stray.write_bytes(b"x")
    _age(stray)
    stats = store.collect(set(), {"live-session"}, cutoff=time.time() - 3600)
    assert stats.staging_removed == 1 and stats.tmp_removed == 1
    assert sorted(os.listdir(store.staging_dir)) == ["fresh-session", "live-session"]


def test_a_slow_call_touches_its_blocks_and_fails_retryably_if_one_was_collected(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path, grace=0.0)  # every call counts as slow
    block = os.urandom(4 * 1024 * 1024)
    [d], _ = asyncio.run(store.put_blocks(_chunks(block), 1 << 30))
    assert store.block_path(d).stat().st_mtime > OLD

    async def slow() -> AsyncIterator[bytes]:
        yield block
        await asyncio.sleep(0.3)  # let the block be stored first
        store.block_path(hashlib.sha256(block).digest()).unlink()  # collected while the call still ran
        yield b"more"

    with pytest.raises(StoreUnavailable):
        asyncio.run(store.put_blocks(slow(), 1 << 30))
