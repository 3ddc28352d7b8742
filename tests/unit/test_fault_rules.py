"""Fault rules (localbox.faults.model) and the in-memory blob store: pure logic, no server."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localbox.domain.content_hash import BLOCK_SIZE
from localbox.faults.model import KINDS, FaultBook, FaultError, parse_rule
from localbox.stores.memory import MemoryBlobStore

pytestmark = pytest.mark.unit
WHO = ("dbid:x", "a@example.com")


def test_defaults_and_validation() -> None:
    rule = parse_rule({"kind": "too_many_requests"}, "f1")
    assert rule.params == {"retry_after": 1, "format": "json"} and rule.times is None and rule.probability == 1.0
    for bad in ({"kind": "nope"}, {"kind": "latency", "params": {"secs": 1}}, {"kind": "latency", "times": 0},
                {"kind": "latency", "probability": 1.5}, {"kind": "server_error", "params": {"status": 404}},
                {"kind": "partial_body", "route": "files/upload"}, {"kind": "latency", "extra": 1},
                {"kind": "too_many_requests", "params": {"retry_after": True}}):
        with pytest.raises(FaultError):
            parse_rule(bad, "f")


def test_after_times_and_scoping() -> None:
    book = FaultBook()
    book.add({"kind": "server_error", "route": "files/upload*", "account": "A@example.com", "after": 1, "times": 2})
    fired = [bool(book.fire(["server_error"], "files/upload", WHO)) for _ in range(5)]
    assert fired == [False, True, True, False, False]
    assert not book.fire(["server_error"], "files/upload", ("dbid:y", "b@example.com"))
    assert not book.fire(["latency"], "files/upload", WHO)


def test_job_rules_match_the_launch_or_the_check_route() -> None:
    book = FaultBook()
    book.add({"kind": "job_stuck", "route": "*/finish_batch/check"})
    assert book.fire(["job_stuck"], "files/upload_session/finish_batch", WHO)
    assert not book.fire(["job_stuck"], "files/delete_batch", WHO)


def test_path_globs_compare_case_insensitively() -> None:
    book = FaultBook()
    book.add({"kind": "latency", "path": "/Docs/*.TXT"})
    assert book.fire(["latency"], "files/upload", WHO, ["/docs/a.txt"])
    assert not book.fire(["latency"], "files/upload", WHO, ["/other/a.txt"])
    assert not book.fire(["latency"], "files/upload", WHO, None)


@given(seed=st.integers(0, 2**31), probability=st.floats(0.05, 0.95))
def test_a_seed_repeats_exactly(seed: int, probability: float) -> None:
    def run() -> list[bool]:
        book = FaultBook()
        book.add({"kind": "latency", "probability": probability, "seed": seed})
        return [bool(book.fire(["latency"], "check/user", None)) for _ in range(50)]

    assert run() == run()


def test_every_kind_documents_itself() -> None:
    assert all(k.doc for k in KINDS.values())


async def _stream(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def test_memory_store_keeps_the_acknowledged_tail_until_discarded() -> None:
    async def run() -> None:
        store = MemoryBlobStore()
        first = await store.append_staged("s", 0, 0, _stream(b"a" * 100), 10**9)
        assert (first.new_blocks, first.tail_length) == ((), 100)
        # An append that completes a block but whose metadata never commits...
        full = await store.append_staged("s", 0, 100, _stream(b"b" * BLOCK_SIZE), 10**9)
        assert len(full.new_blocks) == 1 and full.tail_length == 100
        # ...is retried from the acknowledged state: the first 100 bytes are still there.
        again = await store.append_staged("s", 0, 100, _stream(b"c" * (BLOCK_SIZE - 100)), 10**9, seal=True)
        [block] = again.new_blocks
        assert block == hashlib.sha256(b"a" * 100 + b"c" * (BLOCK_SIZE - 100)).digest()
        data = b"".join([c async for c in store.open([block], BLOCK_SIZE, 50, 150)])
        assert data == b"a" * 50 + b"c" * 50
        await store.discard_staging("s")
        store.clear()
        assert not store.blocks

    asyncio.run(run())
