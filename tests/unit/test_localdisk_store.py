"""LocalDiskBlobStore in a temporary folder: staged appends, block digests, retries, reads."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.stores.base import BodyTooLarge, StagedAppend
from localbox.stores.localdisk import LocalDiskBlobStore

pytestmark = pytest.mark.unit

MIB4 = 4 * 1024 * 1024
NO_LIMIT = 1 << 40
T = TypeVar("T")

_rng = random.Random(7)
DATA = _rng.randbytes(2 * MIB4 + 100_000)  # a little over 8 MiB, shared by the tests


def run(coro: Awaitable[T]) -> T:
    async def wrap() -> T:
        return await coro

    return asyncio.run(wrap())


async def stream(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def seal(store: LocalDiskBlobStore, staging_id: str, index: int, tail: int) -> bytes | None:
    """Seal a session's staged tail the way the service does: an empty append with seal=True."""
    staged = await store.append_staged(staging_id, index, tail, stream([]), NO_LIMIT, seal=True)
    return staged.new_blocks[-1] if staged.new_blocks else None


def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def blocks_on_disk(store: LocalDiskBlobStore) -> list[Path]:
    return sorted(p for p in store.blocks_dir.rglob("*") if p.is_file())


def read_all(store: LocalDiskBlobStore, blocks: Any, size: int, start: int, end: int) -> bytes:
    async def go() -> bytes:
        return b"".join([c async for c in store.open(blocks, size, start, end)])

    return asyncio.run(go())


class Session:
    """Drives append_staged the way the upload-session service does, tracking acknowledged state."""

    def __init__(self, store: LocalDiskBlobStore, sid: str = "sess") -> None:
        self.store, self.sid = store, sid
        self.blocks: list[bytes] = []
        self.tail = 0

    def append(
        self, parts: list[bytes], *, seal: bool = False, ack: bool = True, limit: int = NO_LIMIT,
    ) -> StagedAppend:
        res = run(self.store.append_staged(self.sid, len(self.blocks), self.tail, stream(parts), limit, seal=seal))
        if ack:
            self.blocks += res.new_blocks
            self.tail = res.tail_length
        return res


def test_layout_created(tmp_path: Path) -> None:
    LocalDiskBlobStore(tmp_path / "blobs")
    for d in ("blocks", "staging", "tmp"):
        assert (tmp_path / "blobs" / d).is_dir()


def test_small_appends_stay_in_the_tail(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    r1 = s.append([b"hello ", b"wor"])
    assert (r1.new_blocks, r1.tail_length, r1.received) == ((), 9, 9)
    assert r1.tail_digest == sha(b"hello wor")
    r2 = s.append([b"ld"])
    assert (r2.new_blocks, r2.tail_length, r2.received) == ((), 11, 2)
    assert r2.tail_digest == sha(b"hello world")
    assert blocks_on_disk(store) == []
    digest = run(seal(store, "sess", 0, 11))
    assert digest == sha(b"hello world")
    assert store.block_path(digest).read_bytes() == b"hello world"
    assert read_all(store, [digest], 11, 0, 11) == b"hello world"
    assert read_all(store, [digest], 11, 3, 8) == b"lo wo"


def test_seal_tail_of_empty_tail_is_none(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    assert run(seal(store, "nothing", 0, 0)) is None


@pytest.mark.parametrize(
    "appends",
    [
        # (bytes per append, chunk size within the append)
        [(MIB4 - 1, 1 << 20), (2, 1), (MIB4, 3 * 1000 * 1000), (10, 10)],
        [(100, 7), (MIB4, 1 << 20)],
        [(2 * MIB4 + 1, 1_500_000)],
        [(MIB4, MIB4), (1, 1)],
    ],
)
def test_appends_crossing_block_boundaries(tmp_path: Path, appends: list[tuple[int, int]]) -> None:
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    pos = 0
    for n, chunk in appends:
        piece = DATA[pos : pos + n]
        res = s.append(split(piece, chunk))
        assert res.received == n
        pos += n
        # every completed block is the sha256 of the right 4 MiB slice of everything sent so far
        assert s.blocks == [sha(DATA[i : i + MIB4]) for i in range(0, pos - pos % MIB4, MIB4)]
        assert res.tail_length == pos % MIB4
        assert res.tail_digest == sha(DATA[pos - pos % MIB4 : pos])
    for d in s.blocks:
        assert store.block_path(d).stat().st_size == MIB4
    last = run(seal(store, "sess", len(s.blocks), s.tail))
    blocks = s.blocks + ([last] if last else [])
    assert last == (sha(DATA[pos - pos % MIB4 : pos]) if pos % MIB4 else None)
    assert read_all(store, blocks, pos, 0, pos) == DATA[:pos]
    for start, end in [(0, 1), (MIB4 - 3, min(pos, MIB4 + 3)), (pos - 1, pos), (1, pos - 1), (5, 5)]:
        assert read_all(store, blocks, pos, start, end) == DATA[start:end]


def test_seal_in_append_stores_the_final_partial_block(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    s.append([DATA[:10]])
    res = s.append([DATA[10 : MIB4 + 20]], seal=True)
    assert res.new_blocks == (sha(DATA[:MIB4]), sha(DATA[MIB4 : MIB4 + 20]))
    assert res.tail_length == 0
    assert read_all(store, list(res.new_blocks), MIB4 + 20, 0, MIB4 + 20) == DATA[: MIB4 + 20]


def test_unacknowledged_write_is_discarded(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    s.append([b"acked-"])
    lost = s.append([b"NEVER-ACKNOWLEDGED"], ack=False)
    assert lost.tail_length == 6 + 18
    res = s.append([b"retry"])  # called again with the old tail length
    assert res.tail_length == 11
    assert res.tail_digest == sha(b"acked-retry")
    digest = run(seal(store, "sess", 0, 11))
    assert digest == sha(b"acked-retry")
    assert read_all(store, [digest], 11, 0, 11) == b"acked-retry"


def test_unacknowledged_write_that_completed_a_block_is_discarded(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    head = DATA[:1000]
    s.append([head])
    # this call completes block 0 and starts block 1, but its result is never committed
    wrong = bytes(MIB4)
    lost = s.append(split(wrong, 1 << 20), ack=False)
    assert lost.new_blocks == (sha(head + wrong[: MIB4 - 1000]),)
    # the retry starts again from block 0 with 1000 acknowledged bytes
    good = DATA[1000 : MIB4 + 5000]
    res = s.append(split(good, 999_999))
    assert s.blocks == [sha(DATA[:MIB4])]
    assert res.tail_length == 5000
    assert res.tail_digest == sha(DATA[MIB4 : MIB4 + 5000])
    last = run(seal(store, "sess", 1, 5000))
    assert last == sha(DATA[MIB4 : MIB4 + 5000])
    assert read_all(store, [*s.blocks, last], MIB4 + 5000, 0, MIB4 + 5000) == DATA[: MIB4 + 5000]


def test_unacknowledged_write_from_an_empty_tail_is_discarded(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    s.append(split(bytes(range(256)) * 10, 100), ack=False)
    res = s.append([b"abc"])
    assert (res.tail_length, res.tail_digest) == (3, sha(b"abc"))
    assert run(seal(store, "sess", 0, 3)) == sha(b"abc")


def test_shorter_sealed_retry_after_longer_unacknowledged_write(tmp_path: Path) -> None:
    # The stale bytes of the lost call lie past the retry's end: they must not end up in the block.
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    s.append([b"\xee" * 100], ack=False)
    res = s.append([b"short"], seal=True)
    assert res.new_blocks == (sha(b"short"),)
    assert store.block_path(sha(b"short")).read_bytes() == b"short"
    assert read_all(store, list(res.new_blocks), 5, 0, 5) == b"short"


def test_identical_blocks_are_stored_once(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    block = DATA[:MIB4]
    a = Session(store, "a").append([block, block])
    b = Session(store, "b").append([block[:10], block[10:]])
    assert a.new_blocks == (sha(block), sha(block))
    assert b.new_blocks == (sha(block),)
    assert blocks_on_disk(store) == [store.block_path(sha(block))]
    assert store.block_path(sha(block)).read_bytes() == block


def test_body_too_large(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    with pytest.raises(BodyTooLarge):
        Session(store, "a").append([b"12345", b"678901"], limit=10)
    ok = Session(store, "b").append([b"12345", b"67890"], limit=10)
    assert ok.received == 10
    with pytest.raises(BodyTooLarge):
        run(store.put_blocks(stream([b"x" * 11]), 10))


def test_put_blocks(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    data = DATA[: MIB4 + 123]
    digests, size = run(store.put_blocks(stream(split(data, 1_000_000)), NO_LIMIT))
    assert size == len(data)
    assert digests == (sha(data[:MIB4]), sha(data[MIB4:]))
    assert read_all(store, digests, size, MIB4 - 1, size) == data[MIB4 - 1 :]
    assert run(store.put_blocks(stream([]), NO_LIMIT)) == ((), 0)
    assert not any(store.staging_dir.iterdir())  # put_blocks leaves no staging behind


def test_tap_sees_every_byte(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    seen: list[bytes] = []
    run(store.append_staged("t", 0, 0, stream([b"ab", b"", b"cd"]), NO_LIMIT, seen.append))
    assert b"".join(seen) == b"abcd"


def test_discard_staging(tmp_path: Path) -> None:
    store = LocalDiskBlobStore(tmp_path)
    s = Session(store)
    s.append([b"x" * 10])
    assert (store.staging_dir / "sess").exists()
    run(store.discard_staging("sess", below_index=0))
    assert (store.staging_dir / "sess" / "0").exists()
    run(store.discard_staging("sess"))
    assert not (store.staging_dir / "sess").exists()
    run(store.discard_staging("never-existed"))


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=6),
    chunk=st.integers(1, 700),
    lost=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_random_small_appends_with_lost_acks(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], chunk: int, lost: list[bool],
) -> None:
    store = LocalDiskBlobStore(tmp_path_factory.mktemp("blobs"))
    s = Session(store)
    sent = b""
    pos = 0
    for i, n in enumerate(sizes):
        if lost[i]:
            s.append(split(b"\xee" * 500, chunk), ack=False)  # a call whose result is never committed
        piece = DATA[pos : pos + n]
        pos += n
        res = s.append(split(piece, chunk))
        sent += piece
        assert res.tail_length == len(sent)
        assert res.tail_digest == sha(sent)
    digest = run(seal(store, "sess", 0, len(sent)))
    if sent:
        assert digest == sha(sent)
        assert read_all(store, [digest], len(sent), 0, len(sent)) == sent
    else:
        assert digest is None


# -- several nodes on one folder (#5): the per-process hash cache of session tails must not go stale
def test_two_stores_on_one_folder_never_use_a_stale_tail_hash(tmp_path: Path) -> None:
    a, b = LocalDiskBlobStore(tmp_path), LocalDiskBlobStore(tmp_path)  # two nodes sharing the folder
    x, y, z = b"x" * 100, b"y" * 100, b"z" * 50
    # Node A stages 100 bytes, but its call is never acknowledged (it lost the metadata race, or the
    # client gave up); the client's retry lands on node B, with other bytes of the same length.
    run(a.append_staged("s", 0, 0, stream([x]), NO_LIMIT))
    run(b.append_staged("s", 0, 0, stream([y]), NO_LIMIT))
    # The next append (from the acknowledged state: B's 100 bytes) lands on A again.
    more = run(a.append_staged("s", 0, 100, stream([z]), NO_LIMIT))
    assert more.tail_length == 150 and more.tail_digest == sha(y + z)
    # ...and so does the seal: the block is named by the bytes it holds.
    sealed = run(a.append_staged("s", 0, 150, stream([]), NO_LIMIT, seal=True))
    assert sealed.new_blocks == (sha(y + z),)
    assert read_all(a, sealed.new_blocks, 150, 0, 150) == y + z


def test_a_tail_hash_still_cached_when_nobody_else_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalDiskBlobStore(tmp_path)
    run(store.append_staged("s", 0, 0, stream([b"a" * 1000]), NO_LIMIT))
    import localbox.stores.localdisk as localdisk

    def no_reread(*args: Any) -> bytes:
        raise AssertionError("the staged tail was read again to hash it")

    monkeypatch.setattr(localdisk.os, "pread", no_reread)
    staged = run(store.append_staged("s", 0, 1000, stream([b"b" * 10]), NO_LIMIT))
    assert staged.tail_digest == sha(b"a" * 1000 + b"b" * 10)
