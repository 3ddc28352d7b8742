"""S3BlobStore specifics, against moto's S3 over HTTP on 127.0.0.1 (and endpoints that fail on purpose):
object layout, Range GETs per block slice, bounded in-flight PUTs, staging that does not pile up,
garbage collection with its safety re-check and use markers (a collector and a writer in different
processes racing on one block), URL parsing, and every S3 failure mode surfacing as
StoreUnavailable within a bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _blobstores import (
    DATA,
    MIB4,
    NO_LIMIT,
    MotoEndpoint,
    S3ErrorEndpoint,
    Session,
    create_bucket,
    make_s3,
    read_all,
    run,
    s3_error_endpoint,
    seal,
    sha,
    split,
    start_moto,
    stream,
)

from localbox.domain.errors import StoreUnavailable
from localbox.stores.base import CollectableBlobStore
from localbox.stores.s3 import S3BlobStore
from localbox.stores.s3client import ObjectInfo, S3Client, S3Location

pytestmark = pytest.mark.unit


class Recording:
    """An S3Client wrapper that records calls and how many PUTs run at once."""

    def __init__(self, inner: S3Client) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, Any]] = []
        self.active_puts = 0
        self.max_active_puts = 0
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        with self._lock:
            self.calls.append(("put", key, len(data)))
            self.active_puts += 1
            self.max_active_puts = max(self.max_active_puts, self.active_puts)
        try:
            time.sleep(0.02)  # a slower store than the client, so that PUTs would pile up if unbounded
            self.inner.put(key, data)
        finally:
            with self._lock:
                self.active_puts -= 1

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes | None:
        self.calls.append(("get", key, (start, end)))
        return self.inner.get(key, start, end)

    def head(self, key: str) -> ObjectInfo | None:
        self.calls.append(("head", key, None))
        return self.inner.head(key)

    def touch(self, key: str) -> bool:
        self.calls.append(("touch", key, None))
        return self.inner.touch(key)

    def copy(self, src: str, dst: str) -> bool:
        self.calls.append(("copy", src, dst))
        return self.inner.copy(src, dst)

    def delete(self, key: str) -> None:
        self.calls.append(("delete", key, None))
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self.calls.append(("list", prefix, None))
        return self.inner.list(prefix)

    def check(self, prefix: str) -> None:
        self.calls.append(("check", prefix, None))
        self.inner.check(prefix)


@pytest.fixture()
def s3(moto_s3: MotoEndpoint) -> Iterator[S3BlobStore]:
    store = make_s3(moto_s3, f"t-{secrets.token_hex(6)}/")
    yield store
    store.close()


@pytest.fixture()
def recorded(s3: S3BlobStore) -> Iterator[tuple[S3BlobStore, Recording]]:
    rec = Recording(s3.client)
    store = S3BlobStore(rec, s3.prefix, max_inflight=2)
    yield store, rec
    store.close()


def keys(store: S3BlobStore, under: str) -> list[str]:
    return [o.key[len(store.prefix):] for o in store.client.list(store.prefix + under)]


def test_layout_blocks_by_digest_and_one_tail_object_per_state(s3: S3BlobStore) -> None:
    s = Session(s3)
    s.append([DATA[: MIB4 + 10]])
    h = sha(DATA[:MIB4]).hex()
    assert keys(s3, "blocks/") == [f"blocks/{h[:2]}/{h}"]
    (marker,) = keys(s3, "uses/")  # written before the block
    assert marker.startswith(f"uses/{h[:2]}/{h}/") and s3.client.get(s3.prefix + marker) == b""
    assert keys(s3, "staging/") == ["staging/sess/1/10"]
    assert s3.client.get(s3.prefix + "staging/sess/1/10") == DATA[MIB4 : MIB4 + 10]
    assert s3.client.get(s3.prefix + f"blocks/{h[:2]}/{h}") == DATA[:MIB4]


def test_superseded_tails_do_not_pile_up(s3: S3BlobStore) -> None:
    s = Session(s3)
    for i in range(8):
        s.append([DATA[i * 1000 : (i + 1) * 1000]])
        # the acknowledged state, and at most the one before it (deleted by the next append)
        assert len(keys(s3, "staging/sess/")) <= 2
    assert keys(s3, "staging/sess/")[-1] == "staging/sess/0/8000"
    assert run(seal(s3, "sess", 0, 8000)) == sha(DATA[:8000])


def test_downloads_use_one_range_get_per_block_slice(recorded: tuple[S3BlobStore, Recording]) -> None:
    store, rec = recorded
    data = DATA[: 2 * MIB4 + 100]
    digests, size = run(store.put_blocks(stream(split(data, 1 << 20)), NO_LIMIT))
    rec.calls.clear()
    start, end = 100, 2 * MIB4 + 50
    assert read_all(store, digests, size, start, end) == data[start:end]
    gets = [(key.rsplit("/", 1)[1], rng) for op, key, rng in rec.calls if op == "get"]
    assert gets == [(digests[0].hex(), (100, MIB4)), (digests[1].hex(), (0, MIB4)), (digests[2].hex(), (0, 50))]


def test_uploads_keep_a_bounded_number_of_blocks_in_flight(recorded: tuple[S3BlobStore, Recording]) -> None:
    store, rec = recorded
    data = DATA[:MIB4] * 6 + DATA[: MIB4 // 2]  # 26 MiB in 64 KiB chunks, faster than the PUTs
    res = run(store.append_staged("big", 0, 0, stream(split(data, 65536)), NO_LIMIT))
    assert len(res.new_blocks) == 6 and res.tail_length == MIB4 // 2
    puts = [size for op, _, size in rec.calls if op == "put"]
    assert max(puts) <= MIB4
    assert 1 <= rec.max_active_puts <= store.max_inflight


def test_a_slow_upload_renews_its_blocks_for_the_collector(s3: S3BlobStore) -> None:
    rec = Recording(s3.client)
    store = S3BlobStore(rec, s3.prefix, grace=0.4, max_inflight=1)  # renew after 0.1 s

    async def slow() -> AsyncIterator[bytes]:
        for part in split(DATA[: 3 * MIB4 // 1], MIB4 // 2):
            await asyncio.sleep(0.03)
            yield part

    try:
        res = run(store.append_staged("slow", 0, 0, slow(), NO_LIMIT))
    finally:
        store.close()
    touched = {key.rsplit("/", 1)[1] for op, key, _ in rec.calls if op == "touch"}
    assert touched and touched <= {d.hex() for d in res.new_blocks}


def test_a_block_collected_during_a_slow_upload_fails_it_retryably(s3: S3BlobStore) -> None:
    store = S3BlobStore(s3.client, s3.prefix, grace=0.2, max_inflight=1)

    async def slow() -> AsyncIterator[bytes]:
        yield DATA[:MIB4]
        await asyncio.sleep(0.3)
        for o in list(s3.client.list(s3.prefix + "blocks/")):  # a collector ran meanwhile
            s3.client.delete(o.key)
        yield DATA[MIB4 : 2 * MIB4]

    try:
        with pytest.raises(StoreUnavailable):
            run(store.append_staged("slow", 0, 0, slow(), NO_LIMIT))
    finally:
        store.close()


def test_is_collectable() -> None:
    assert isinstance(S3BlobStore.__new__(S3BlobStore), CollectableBlobStore)


def test_collect_deletes_only_old_unreferenced_blocks_and_dead_staging(s3: S3BlobStore) -> None:
    keep, drop = DATA[:1000], DATA[1000:2000]
    (kd,), _ = run(s3.put_blocks(stream([keep]), NO_LIMIT))
    (dd,), _ = run(s3.put_blocks(stream([drop]), NO_LIMIT))
    Session(s3, "live").append([b"live tail"])
    Session(s3, "dead").append([b"dead tail"])
    young = s3.collect(set(), set(), cutoff=time.time() - 3600)
    assert (young.blocks_deleted, young.blocks_kept_young, young.staging_removed) == (0, 2, 0)
    stats = s3.collect({kd}, {"live"}, cutoff=time.time() + 5)
    assert (stats.blocks_deleted, stats.bytes_freed, stats.staging_removed) == (1, 1000, 1)
    assert read_all(s3, [kd], 1000, 0, 1000) == keep
    with pytest.raises(OSError):
        read_all(s3, [dd], 1000, 0, 1000)
    assert keys(s3, "staging/") == ["staging/live/0/9"]


def test_collect_keeps_a_block_put_again_after_its_listing(s3: S3BlobStore) -> None:
    (digest,), _ = run(s3.put_blocks(stream([b"reused content"]), NO_LIMIT))

    class StaleListing(Recording):
        def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
            self.inner.put(key, data)

        def list(self, prefix: str) -> Iterator[ObjectInfo]:
            for o in self.inner.list(prefix):
                yield ObjectInfo(o.key, o.size, 0.0)  # listed as ancient

        def head(self, key: str) -> ObjectInfo | None:
            # an upload of the same content lands between the collector's listing and its re-check
            self.inner.put(key, b"reused content")
            return self.inner.head(key)

    store = S3BlobStore(StaleListing(s3.client), s3.prefix)
    try:
        stats = store.collect(set(), set(), cutoff=time.time() - 60)
    finally:
        store.close()
    assert (stats.blocks_deleted, stats.blocks_kept_young) == (0, 1)
    assert read_all(s3, [digest], 14, 0, 14) == b"reused content"


def test_collect_never_loses_a_block_put_again_between_its_head_and_delete(s3: S3BlobStore) -> None:
    """The upload of old, unreferenced content racing the collector in the same process: the PUT
    waits until the DELETE is done and writes the block anew."""
    (digest,), _ = run(s3.put_blocks(stream([b"reused content"]), NO_LIMIT))
    uploads: list[threading.Thread] = []

    class PutDuringHead(Recording):
        def head(self, key: str) -> ObjectInfo | None:
            upload = threading.Thread(target=store._store_block, args=(bytearray(b"reused content"),))
            upload.start()
            uploads.append(upload)
            upload.join(0.5)  # unguarded, the PUT lands here, before the DELETE
            return self.inner.head(key)

    store = S3BlobStore(PutDuringHead(s3.client), s3.prefix)
    try:
        stats = store.collect(set(), set(), cutoff=time.time() + 60)  # every block counts as old
        for upload in uploads:
            upload.join(10)
    finally:
        store.close()
    assert stats.blocks_deleted == 1 and len(uploads) == 1
    assert read_all(s3, [digest], 14, 0, 14) == b"reused content"


def _aged_block(store: S3BlobStore, data: bytes) -> tuple[bytes, float]:
    """Store `data` as a block and wait until it (and its use marker) is older than the returned cutoff,
    while anything written from now on is younger (LastModified has one-second resolution)."""
    (digest,), _ = run(store.put_blocks(stream([data]), NO_LIMIT))
    time.sleep(2.1)
    return digest, time.time() - 1.0


class PauseAfter(Recording):
    """A collector's client that runs `meanwhile` (another process's write) once, right after `op`
    on a blocks/ key returned."""

    def __init__(self, inner: S3Client, op: str, meanwhile: Any) -> None:
        super().__init__(inner)
        self.op, self.meanwhile, self.ran = op, meanwhile, False

    def _after(self, op: str, key: str) -> None:
        if op == self.op and "/blocks/" in "/" + key and not self.ran:
            self.ran = True
            self.meanwhile()

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self.inner.put(key, data)

    def head(self, key: str) -> ObjectInfo | None:
        info = self.inner.head(key)
        self._after("head", key)
        return info

    def copy(self, src: str, dst: str) -> bool:
        done = self.inner.copy(src, dst)
        self._after("copy", src)
        return done

    def delete(self, key: str) -> None:
        self.inner.delete(key)
        self._after("delete", key)


def _race(s3: S3BlobStore, op: str, writer: str, markers: bool = True) -> tuple[Any, bytes]:
    """A collector and a writer in two processes (two stores: nothing shared but the bucket): the
    writer stores (or touches) the collector's old, unreferenced block right after the collector's
    `op`.  Returns the collector's stats and the digest."""
    data = b"content reused by another node " + secrets.token_bytes(8)
    digest, cutoff = _aged_block(s3, data)
    other_node = S3BlobStore(s3.client, s3.prefix)
    if not markers:
        other_node._mark_use = lambda d: None  # type: ignore[method-assign]

    def write() -> None:
        if writer == "put":
            other_node._store_block(bytearray(data))
        else:
            with contextlib.suppress(StoreUnavailable):  # a touch after the DELETE fails its call retryably
                other_node._refresh([digest])

    collector = S3BlobStore(PauseAfter(s3.client, op, write), s3.prefix)
    try:
        stats = collector.collect(set(), set(), cutoff)
    finally:
        collector.close()
        other_node.close()
    assert collector.client.ran  # type: ignore[attr-defined]
    return stats, digest


@pytest.mark.parametrize("writer", ["put", "touch"])
@pytest.mark.parametrize("op", ["head", "copy"])
def test_a_write_from_another_process_between_head_and_delete_keeps_the_block(
    s3: S3BlobStore, op: str, writer: str,
) -> None:
    """The write lands after the collector's HEAD found the block old, before its DELETE: the marker
    written first makes the collector put the block back."""
    data_len = len(b"content reused by another node ") + 8
    stats, digest = _race(s3, op, writer)
    assert (stats.blocks_deleted, stats.blocks_restored, stats.blocks_kept_young) == (0, 1, 1)
    assert len(read_all(s3, [digest], data_len, 0, data_len)) == data_len
    assert keys(s3, "trash/") == []


def test_a_put_from_another_process_after_the_delete_keeps_the_block(s3: S3BlobStore) -> None:
    stats, digest = _race(s3, "delete", "put")
    assert stats.blocks_deleted + stats.blocks_restored == 1  # either way, the block is there
    assert read_all(s3, [digest], 7, 0, 7) == b"content"
    assert keys(s3, "trash/") == []


@pytest.mark.parametrize("op", ["head", "copy"])
def test_without_use_markers_that_race_loses_the_block(s3: S3BlobStore, op: str) -> None:
    """What the markers are for: the same race with a writer that writes none loses the block."""
    stats, digest = _race(s3, op, "put", markers=False)
    assert stats.blocks_deleted == 1
    with pytest.raises(OSError):
        read_all(s3, [digest], 7, 0, 7)


def test_collect_removes_use_markers_older_than_the_cutoff(s3: S3BlobStore) -> None:
    old, cutoff = _aged_block(s3, b"old block")
    (young,), _ = run(s3.put_blocks(stream([b"young block"]), NO_LIMIT))
    stats = s3.collect({old, young}, set(), cutoff)
    assert stats.markers_removed == 1 and stats.blocks_deleted == 0
    (marker,) = keys(s3, "uses/")
    assert young.hex() in marker and old.hex() not in marker


def test_collect_restores_abandoned_trash_only_when_protected(s3: S3BlobStore) -> None:
    """A collector that died between its DELETE and its restore left trash copies: a later pass puts a
    block back when it is referenced or freshly marked, deletes the other copies, and leaves alone
    a copy young enough that a collector may still be working on it."""
    referenced, marked, unused = (sha(b) for b in (b"referenced", b"marked", b"unused"))
    for digest, data in ((referenced, b"referenced"), (marked, b"marked"), (unused, b"unused")):
        h = digest.hex()
        s3.client.put(f"{s3.prefix}trash/{h[:2]}/{h}/{secrets.token_hex(4)}", data)
    s3.client.put(s3._uses_prefix(marked) + "m", b"")  # a write raced the dead collector
    cutoff = time.time() - 60
    assert s3.collect({referenced}, set(), cutoff).trash_restored == 0  # young: maybe in progress
    assert len(keys(s3, "trash/")) == 3
    s3.trash_abandoned_after = 0.0
    time.sleep(1.1)
    stats = s3.collect({referenced}, set(), cutoff)
    assert (stats.trash_restored, stats.trash_removed) == (2, 1)
    assert keys(s3, "trash/") == []
    assert read_all(s3, [referenced], 10, 0, 10) == b"referenced"
    assert read_all(s3, [marked], 6, 0, 6) == b"marked"
    with pytest.raises(OSError):
        read_all(s3, [unused], 6, 0, 6)


# -- URLs
def test_url_parsing() -> None:
    loc = S3Location.parse("s3://bkt/a/b/?endpoint_url=http://127.0.0.1:9000&region=eu-west-1")
    assert (loc.bucket, loc.prefix, loc.endpoint_url, loc.region) == ("bkt", "a/b/", "http://127.0.0.1:9000",
                                                                     "eu-west-1")
    assert S3Location.parse("s3://bkt").prefix == ""
    with_keys = S3Location.parse("s3://bkt/p?access_key=AK&secret_key=SK")
    assert (with_keys.access_key, with_keys.secret_key) == ("AK", "SK")
    assert "SK" not in with_keys.display() and "AK" not in with_keys.display()
    for bad in ("file:///x", "s3:///nobucket", "s3://b/p?endpoint=x", "s3://b/p?access_key=AK"):
        with pytest.raises(ValueError):
            S3Location.parse(bad)


# -- failures become StoreUnavailable, in bounded time
def test_a_stopped_endpoint_gives_store_unavailable_quickly() -> None:
    server, url = start_moto()
    bucket = "stopping-" + secrets.token_hex(4)
    create_bucket(url, bucket)
    store = S3BlobStore.from_url(f"s3://{bucket}/p?endpoint_url={url}&region=us-east-1")
    try:
        s = Session(store)
        s.append([b"before the outage"])
        (digest,), _ = run(store.put_blocks(stream([b"a block"]), NO_LIMIT))
        server.stop()
        for attempt in (
            lambda: s.append([b" more"]),
            lambda: run(store.put_blocks(stream([DATA[:MIB4]]), NO_LIMIT)),
            lambda: read_all(store, [digest], 7, 0, 7),
            lambda: run(store.discard_staging("sess")),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                attempt()
            assert time.monotonic() - started < 15
    finally:
        store.close()


@pytest.fixture(params=["503", "hang"])
def failing_endpoint(request: pytest.FixtureRequest) -> Iterator[S3ErrorEndpoint]:
    """Answers every request with a 503 SlowDown, or hangs."""
    with s3_error_endpoint(503, "SlowDown", "Please reduce your request rate.",
                           hang=5.0 if request.param == "hang" else 0.0) as server:
        yield server


def test_a_failing_endpoint_gives_store_unavailable_after_bounded_retries(failing_endpoint: S3ErrorEndpoint) -> None:
    from localbox.stores.s3botocore import BotocoreS3Client

    location = S3Location.parse(f"s3://bkt/p?endpoint_url={failing_endpoint.url}&region=us-east-1")
    store = S3BlobStore(BotocoreS3Client(location, attempts=3, read_timeout=0.5), location.prefix)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            run(store.put_blocks(stream([b"some bytes"]), NO_LIMIT))
        assert time.monotonic() - started < 10
        assert failing_endpoint.hits == 3  # the first try and two retries, no more
        with pytest.raises(StoreUnavailable):
            read_all(store, [sha(b"x")], 1, 0, 1)
    finally:
        store.close()


def test_botocore_is_imported_only_for_an_s3_url() -> None:
    import subprocess
    import sys

    code = ("import sys, localbox.app, localbox.cli, localbox.stores.s3; "
            "assert 'botocore' not in sys.modules, 'botocore imported without an s3 URL'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_garbage_collector_service_collects_on_s3(s3: S3BlobStore, tmp_path: Any) -> None:
    from localbox.services.gc import GarbageCollector
    from localbox.stores.sqlite import SqliteMetadataStore

    run(s3.put_blocks(stream([b"orphan"]), NO_LIMIT))  # a block no file refers to
    Session(s3, "gone").append([b"a session the metadata no longer knows"])
    time.sleep(1.1)  # LastModified has one-second resolution

    async def collect() -> Any:
        metadata = SqliteMetadataStore(tmp_path / "metadata.sqlite3")
        try:
            return await GarbageCollector(metadata, s3, grace=0.5, revision_retention=3600).run_once()
        finally:
            await metadata.close()

    report = run(collect())
    assert (report.blob_stats.blocks_deleted, report.blob_stats.staging_removed) == (1, 1)
    assert keys(s3, "") == []


def test_probe_is_one_read_only_check(recorded: tuple[S3BlobStore, Recording]) -> None:
    store, rec = recorded
    run(store.probe())
    store.check()
    assert rec.calls == [("check", store.prefix, None)] * 2  # no PUT, no GET: cheap enough to poll


def test_probe_and_check_fail_on_a_missing_bucket(moto_s3: MotoEndpoint) -> None:
    store = S3BlobStore.from_url(f"s3://missing-{secrets.token_hex(4)}/p?endpoint_url={moto_s3.url}&region=us-east-1")
    try:
        with pytest.raises(StoreUnavailable, match="does not exist at"):
            run(store.probe())
        with pytest.raises(StoreUnavailable, match="does not exist at"):
            store.check()
    finally:
        store.close()
