"""The BlobStore contract, run against every backend (local disk, memory, S3 on moto over HTTP).

Ported from the local disk's unit tests: exact bytes and digests across block boundaries, ranges,
unacknowledged appends discarded, staged tails surviving a restart of the store object, seal,
put_blocks, BodyTooLarge, tap, discard_staging, concurrent appends to different sessions.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

import pytest
from _blobstores import (
    DATA,
    MIB4,
    NO_LIMIT,
    Session,
    Store,
    has_staging,
    read_all,
    run,
    seal,
    sha,
    split,
    stored_blocks,
    stream,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localbox.stores.base import BodyTooLarge, StagedAppend

pytestmark = pytest.mark.unit


def test_small_appends_stay_in_the_tail(blob_store: Store) -> None:
    s = Session(blob_store)
    r1 = s.append([b"hello ", b"wor"])
    assert (r1.new_blocks, r1.tail_length, r1.received) == ((), 9, 9)
    assert r1.tail_digest == sha(b"hello wor")
    r2 = s.append([b"ld"])
    assert (r2.new_blocks, r2.tail_length, r2.received) == ((), 11, 2)
    assert r2.tail_digest == sha(b"hello world")
    assert stored_blocks(blob_store) == set()
    digest = run(seal(blob_store, "sess", 0, 11))
    assert digest == sha(b"hello world")
    assert stored_blocks(blob_store) == {digest}
    assert read_all(blob_store, [digest], 11, 0, 11) == b"hello world"
    assert read_all(blob_store, [digest], 11, 3, 8) == b"lo wo"


def test_seal_of_an_empty_tail_is_none(blob_store: Store) -> None:
    assert run(seal(blob_store, "nothing", 0, 0)) is None


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
def test_appends_crossing_block_boundaries(blob_store: Store, appends: list[tuple[int, int]]) -> None:
    s = Session(blob_store)
    pos = 0
    for n, chunk in appends:
        res = s.append(split(DATA[pos : pos + n], chunk))
        assert res.received == n
        pos += n
        # every completed block is the sha256 of the right 4 MiB slice of everything sent so far
        assert s.blocks == [sha(DATA[i : i + MIB4]) for i in range(0, pos - pos % MIB4, MIB4)]
        assert res.tail_length == pos % MIB4
        assert res.tail_digest == sha(DATA[pos - pos % MIB4 : pos])
    last = run(seal(blob_store, "sess", len(s.blocks), s.tail))
    blocks = s.blocks + ([last] if last else [])
    assert last == (sha(DATA[pos - pos % MIB4 : pos]) if pos % MIB4 else None)
    assert stored_blocks(blob_store) == set(blocks)
    assert read_all(blob_store, blocks, pos, 0, pos) == DATA[:pos]
    for start, end in [(0, 1), (MIB4 - 3, min(pos, MIB4 + 3)), (pos - 1, pos), (1, pos - 1), (5, 5)]:
        assert read_all(blob_store, blocks, pos, start, end) == DATA[start:end]


def test_seal_in_append_stores_the_final_partial_block(blob_store: Store) -> None:
    s = Session(blob_store)
    s.append([DATA[:10]])
    res = s.append([DATA[10 : MIB4 + 20]], seal=True)
    assert res.new_blocks == (sha(DATA[:MIB4]), sha(DATA[MIB4 : MIB4 + 20]))
    assert res.tail_length == 0
    assert read_all(blob_store, list(res.new_blocks), MIB4 + 20, 0, MIB4 + 20) == DATA[: MIB4 + 20]


def test_unacknowledged_write_is_discarded(blob_store: Store) -> None:
    s = Session(blob_store)
    s.append([b"acked-"])
    lost = s.append([b"NEVER-ACKNOWLEDGED"], ack=False)
    assert lost.tail_length == 6 + 18
    res = s.append([b"retry"])  # called again with the old tail length
    assert (res.tail_length, res.tail_digest) == (11, sha(b"acked-retry"))
    digest = run(seal(blob_store, "sess", 0, 11))
    assert digest == sha(b"acked-retry")
    assert read_all(blob_store, [digest], 11, 0, 11) == b"acked-retry"


def test_unacknowledged_write_of_the_same_length_is_replaced(blob_store: Store) -> None:
    s = Session(blob_store)
    s.append([b"acked-"])
    s.append([b"LOST!"], ack=False)
    res = s.append([b"retry"])  # same resulting length as the lost call, other bytes
    assert res.tail_digest == sha(b"acked-retry")
    assert run(seal(blob_store, "sess", 0, 11)) == sha(b"acked-retry")


def test_unacknowledged_write_that_completed_a_block_is_discarded(blob_store: Store) -> None:
    s = Session(blob_store)
    head = DATA[:1000]
    s.append([head])
    wrong = bytes(MIB4)  # this call completes block 0 and starts block 1, but is never committed
    lost = s.append(split(wrong, 1 << 20), ack=False)
    assert lost.new_blocks == (sha(head + wrong[: MIB4 - 1000]),)
    good = DATA[1000 : MIB4 + 5000]  # the retry starts again from block 0 with 1000 acknowledged bytes
    res = s.append(split(good, 999_999))
    assert s.blocks == [sha(DATA[:MIB4])]
    assert (res.tail_length, res.tail_digest) == (5000, sha(DATA[MIB4 : MIB4 + 5000]))
    last = run(seal(blob_store, "sess", 1, 5000))
    assert last == sha(DATA[MIB4 : MIB4 + 5000])
    assert read_all(blob_store, [*s.blocks, last], MIB4 + 5000, 0, MIB4 + 5000) == DATA[: MIB4 + 5000]


def test_unacknowledged_write_from_an_empty_tail_is_discarded(blob_store: Store) -> None:
    s = Session(blob_store)
    s.append(split(bytes(range(256)) * 10, 100), ack=False)
    res = s.append([b"abc"])
    assert (res.tail_length, res.tail_digest) == (3, sha(b"abc"))
    assert run(seal(blob_store, "sess", 0, 3)) == sha(b"abc")


def test_shorter_sealed_retry_after_longer_unacknowledged_write(blob_store: Store) -> None:
    s = Session(blob_store)
    s.append([b"\xee" * 100], ack=False)
    res = s.append([b"short"], seal=True)
    assert res.new_blocks == (sha(b"short"),)
    assert read_all(blob_store, list(res.new_blocks), 5, 0, 5) == b"short"


def test_staged_tail_survives_a_restart_of_the_store(blob_backend: str, open_blob_store: Callable[[], Store]) -> None:
    if blob_backend == "memory":
        pytest.skip("the memory store forgets everything with its process, by design")
    s = Session(open_blob_store())
    s.append([DATA[: MIB4 + 300]])
    s.store = open_blob_store()  # a new store object on the same data: a restart, or another node
    s.append([DATA[MIB4 + 300 : MIB4 + 700]])
    s.store = open_blob_store()
    last = run(seal(s.store, "sess", len(s.blocks), s.tail))
    assert last is not None
    assert read_all(open_blob_store(), [*s.blocks, last], MIB4 + 700, 0, MIB4 + 700) == DATA[: MIB4 + 700]


def test_identical_blocks_are_stored_once(blob_store: Store) -> None:
    block = DATA[:MIB4]
    a = Session(blob_store, "a").append([block, block])
    b = Session(blob_store, "b").append([block[:10], block[10:]])
    assert a.new_blocks == (sha(block), sha(block))
    assert b.new_blocks == (sha(block),)
    assert stored_blocks(blob_store) == {sha(block)}
    assert read_all(blob_store, [sha(block)], MIB4, 0, MIB4) == block


def test_body_too_large(blob_store: Store) -> None:
    with pytest.raises(BodyTooLarge):
        Session(blob_store, "a").append([b"12345", b"678901"], limit=10)
    ok = Session(blob_store, "b").append([b"12345", b"67890"], limit=10)
    assert ok.received == 10
    with pytest.raises(BodyTooLarge):
        run(blob_store.put_blocks(stream([b"x" * 11]), 10))
    with pytest.raises(BodyTooLarge):
        run(blob_store.put_blocks(stream(split(DATA[: MIB4 + 10], 1 << 20)), MIB4))


def test_put_blocks(blob_store: Store) -> None:
    data = DATA[: MIB4 + 123]
    digests, size = run(blob_store.put_blocks(stream(split(data, 1_000_000)), NO_LIMIT))
    assert size == len(data)
    assert digests == (sha(data[:MIB4]), sha(data[MIB4:]))
    assert read_all(blob_store, digests, size, MIB4 - 1, size) == data[MIB4 - 1 :]
    assert run(blob_store.put_blocks(stream([]), NO_LIMIT)) == ((), 0)
    assert stored_blocks(blob_store) == set(digests)


def test_tap_sees_every_byte(blob_store: Store) -> None:
    seen: list[bytes] = []
    run(blob_store.append_staged("t", 0, 0, stream([b"ab", b"", b"cd"]), NO_LIMIT, seen.append))
    assert b"".join(seen) == b"abcd"
    seen.clear()
    run(blob_store.put_blocks(stream([b"ef", b"gh"]), NO_LIMIT, seen.append))
    assert b"".join(seen) == b"efgh"


def test_discard_staging(blob_store: Store) -> None:
    s = Session(blob_store)
    s.append([b"x" * 10])
    assert has_staging(blob_store, "sess")
    run(blob_store.discard_staging("sess", below_index=0))
    assert has_staging(blob_store, "sess")
    assert run(seal(blob_store, "sess", 0, 10)) == sha(b"x" * 10)  # the tail is still whole
    run(blob_store.discard_staging("sess"))
    assert not has_staging(blob_store, "sess")
    run(blob_store.discard_staging("never-existed"))


def test_discard_below_index_keeps_the_current_tail(blob_store: Store) -> None:
    s = Session(blob_store)
    s.append([DATA[:100]])
    s.append([DATA[100 : MIB4 + 50]])  # completes block 0; the service then discards below index 1
    assert has_staging(blob_store, "sess")
    assert run(seal(blob_store, "sess", 1, 50)) == sha(DATA[MIB4 : MIB4 + 50])


def test_reads_outside_stored_blocks_fail(blob_store: Store) -> None:
    with pytest.raises((OSError, KeyError)):
        read_all(blob_store, [sha(b"never stored")], 12, 0, 12)


def test_concurrent_appends_to_different_sessions(blob_store: Store) -> None:
    a_data, b_data = DATA[: MIB4 + 777], DATA[-(MIB4 + 999) :]

    async def both() -> tuple[StagedAppend, StagedAppend]:
        a = Session(blob_store, "a").append_async(split(a_data, 65536))
        b = Session(blob_store, "b").append_async(split(b_data, 100_000))
        return await asyncio.gather(a, b)

    ra, rb = run(both())
    assert (ra.new_blocks, ra.tail_length, ra.tail_digest) == ((sha(a_data[:MIB4]),), 777, sha(a_data[MIB4:]))
    assert (rb.new_blocks, rb.tail_length, rb.tail_digest) == ((sha(b_data[:MIB4]),), 999, sha(b_data[MIB4:]))
    la, lb = run(seal(blob_store, "a", 1, 777)), run(seal(blob_store, "b", 1, 999))
    assert read_all(blob_store, [*ra.new_blocks, la], len(a_data), 0, len(a_data)) == a_data
    assert read_all(blob_store, [*rb.new_blocks, lb], len(b_data), 0, len(b_data)) == b_data


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=6),
    chunk=st.integers(1, 700),
    lost=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_random_small_appends_with_lost_acks(blob_store: Store, sizes: list[int], chunk: int, lost: list[bool]) -> None:
    sid = "h-" + hashlib.sha256(repr((sizes, chunk, lost)).encode()).hexdigest()[:16]
    run(blob_store.discard_staging(sid))
    s = Session(blob_store, sid)
    sent = b""
    for i, n in enumerate(sizes):
        if lost[i]:
            s.append(split(b"\xee" * 500, chunk), ack=False)  # a call whose result is never committed
        piece = DATA[len(sent) : len(sent) + n]
        res = s.append(split(piece, chunk))
        sent += piece
        assert (res.tail_length, res.tail_digest) == (len(sent), sha(sent))
    digest = run(seal(blob_store, sid, 0, len(sent)))
    if sent:
        assert digest == sha(sent)
        assert read_all(blob_store, [digest], len(sent), 0, len(sent)) == sent
    else:
        assert digest is None
