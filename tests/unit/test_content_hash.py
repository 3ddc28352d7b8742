"""Dropbox content hash: known vectors, the SDK's own hasher, and an independent oracle."""

from __future__ import annotations

import hashlib
import random

import pytest
from dropbox.content_hash import DropboxContentHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.domain.content_hash import ContentHasher, content_hash, hash_from_digests

pytestmark = pytest.mark.unit

MIB4 = 4 * 1024 * 1024  # written out here on purpose: not imported from the code under test

KNOWN = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"hello", "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"),
]


def oracle(data: bytes) -> str:
    """Independent definition: sha256 over the sha256 digests of consecutive 4 MiB slices."""
    digests = b"".join(hashlib.sha256(data[i : i + MIB4]).digest() for i in range(0, len(data), MIB4))
    return hashlib.sha256(digests).hexdigest()


def sdk(data: bytes) -> str:
    h = DropboxContentHasher()
    h.update(data)
    return str(h.hexdigest())


def fed(data: bytes, cuts: list[int]) -> str:
    h = ContentHasher()
    prev = 0
    for c in sorted(cuts):
        h.update(data[prev:c])
        prev = c
    h.update(data[prev:])
    return h.hexdigest()


@pytest.mark.parametrize(("data", "expected"), KNOWN)
def test_known_small_vectors(data: bytes, expected: str) -> None:
    assert content_hash(data) == expected
    assert oracle(data) == expected
    assert sdk(data) == expected


def test_known_block_vectors() -> None:
    zeros = bytes(MIB4 + 1)
    assert content_hash(zeros[:MIB4]) == "c7e946d101855255d919ef0c70718633adf77d3dfb3adeeecf5d0cb4e951be58"
    assert content_hash(zeros) == "14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6"


def test_empty_is_sha256_of_nothing_and_not_of_one_empty_block() -> None:
    assert content_hash(b"") == hashlib.sha256(b"").hexdigest()
    assert content_hash(b"") != hashlib.sha256(hashlib.sha256(b"").digest()).hexdigest()
    h = ContentHasher()
    h.update(b"")
    h.update(memoryview(b""))
    assert h.hexdigest() == KNOWN[0][1]


def test_hash_from_digests_matches_block_digests() -> None:
    blocks = [b"a" * 10, b"b" * 7]
    digests = [hashlib.sha256(b).digest() for b in blocks]
    assert hash_from_digests(digests) == hashlib.sha256(b"".join(digests)).hexdigest()
    assert hash_from_digests([]) == KNOWN[0][1]


def test_hexdigest_does_not_consume_state() -> None:
    h = ContentHasher()
    h.update(b"hel")
    first = h.hexdigest()
    assert first == oracle(b"hel")
    h.update(b"lo")
    assert h.hexdigest() == KNOWN[1][1]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=12))
def test_small_data_any_split_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    cuts = [min(c, len(data)) for c in cuts]
    expected = oracle(data)
    assert content_hash(data) == expected
    assert fed(data, cuts) == expected


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=500))
def test_memoryview_input_equals_bytes(data: bytes) -> None:
    h = ContentHasher()
    h.update(memoryview(data))
    assert h.hexdigest() == oracle(data)


_rng = random.Random(20240611)
_BIG = _rng.randbytes(2 * MIB4 + 3)


@pytest.mark.parametrize("length", [MIB4 - 1, MIB4, MIB4 + 1, 2 * MIB4, 2 * MIB4 + 3])
def test_block_boundary_lengths_match_sdk_and_oracle(length: int) -> None:
    data = _BIG[:length]
    expected = oracle(data)
    assert sdk(data) == expected
    assert content_hash(data) == expected


@settings(max_examples=8, deadline=None)
@given(
    length=st.sampled_from([MIB4 - 1, MIB4, MIB4 + 1, 2 * MIB4 + 3]),
    offsets=st.lists(st.integers(-5, 5), min_size=1, max_size=4),
    anchors=st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=4),
)
def test_splits_around_block_boundaries(length: int, offsets: list[int], anchors: list[int]) -> None:
    data = _BIG[:length]
    cuts = [max(0, min(length, a * MIB4 + o)) for a, o in zip(anchors, offsets, strict=False)]
    assert fed(data, cuts) == oracle(data)


def test_one_byte_change_changes_hash() -> None:
    data = bytearray(_BIG[: MIB4 + 1])
    before = content_hash(bytes(data))
    data[-1] ^= 1
    assert content_hash(bytes(data)) != before
