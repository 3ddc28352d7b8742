"""Garbage collection on a real server: disk usage returns to baseline after a delete-everything
scenario, deleted files stay restorable for the retention period, and a collector running every
fraction of a second during deletes and re-uploads of the same bytes never loses a committed block."""

from __future__ import annotations

import hashlib
import os
import random
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from _apiwire import Api, content_hash, describe
from harness import running_server
from reliability_backends import Backend

pytestmark = pytest.mark.reliability
MiB = 1024 * 1024


def _data(i: int, size: int) -> bytes:
    seed = hashlib.sha256(f"gc-{i}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def _wait_for(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_disk_usage_returns_to_baseline_after_everything_is_deleted(tmp_path: Path, backend: Backend) -> None:
    data_dir = tmp_path / "data"
    args = [*backend.serve_args, "--session-ttl", "3s", "--gc-interval", "1h"]
    with running_server(data_dir, args) as server, httpx.Client(base_url=server.url, timeout=60,
                                                                 trust_env=False) as http:
        baseline = backend.blob_usage(data_dir)
        a = Api(http, server.new_account().token)
        big = _data(1, 9 * MiB + 123)  # three blocks, the last one short
        a.upload_ok("/docs/big.bin", big)
        a.upload_ok("/docs/small.txt", b"small")
        a.upload_ok("/docs/small.txt", b"small v2", mode="overwrite")
        assert a.rpc("files/copy_v2", {"from_path": "/docs/big.bin", "to_path": "/copy/big.bin"}).status_code == 200
        assert a.rpc("files/move_v2", {"from_path": "/docs/small.txt", "to_path": "/moved.txt"}).status_code == 200
        sid = a.start_ok(_data(2, 4 * MiB + 17))  # a full block plus a staged tail...
        a.append_ok(sid, 4 * MiB + 17, b"more")  # ... never finished: expires after 3 s
        cs = a.rpc("files/upload_session/start_batch", {"num_sessions": 1, "session_type": "concurrent"}
                   ).json()["session_ids"][0]
        a.content("files/upload_session/append_v2", {"cursor": {"session_id": cs, "offset": 0}, "close": True},
                  _data(3, 1000))
        a.finish_ok(cs, 1000, "/concurrent.bin")
        assert backend.blob_usage(data_dir)[1] > len(big)
        for entry in a.rpc("files/list_folder", {"path": ""}).json()["entries"]:
            assert a.rpc("files/delete_v2", {"path": entry["path_lower"]}).status_code == 200
        time.sleep(4)  # the session expires; the housekeeping sweep (every second here) forgets it

        # Within the retention period a deleted file is still restorable, so its blocks stay.
        server.cli("gc", "--gc-grace", "0s")
        revs = a.rpc("files/list_revisions", {"path": "/docs/big.bin"}).json()["entries"]
        restored = a.rpc("files/restore", {"path": "/docs/big.bin", "rev": revs[0]["rev"]})
        assert restored.status_code == 200, describe(restored)
        assert a.download_bytes("/docs/big.bin") == big
        assert a.rpc("files/delete_v2", {"path": "/docs/big.bin"}).status_code == 200

        # Past the retention period (0 here) nothing is left of any of it.
        out = server.cli("gc", "--gc-grace", "0s", "--revision-retention", "0s")
        assert "revisions expired: " in out
        assert backend.blob_usage(data_dir) == baseline, out
        assert a.rpc("files/list_revisions", {"path": "/docs/big.bin"}).json()["entries"] == []
        # The server keeps working on the emptied store, identical bytes included.
        a.upload_ok("/again/big.bin", big)
        assert a.download_bytes("/again/big.bin") == big


def test_a_collector_racing_deletes_and_reuploads_never_loses_a_committed_block(
    tmp_path: Path, backend: Backend,
) -> None:
    """Blocks are aged (their mtimes set back on the local disk; on S3, whose LastModified cannot be
    set, the test waits out the grace period), so every one is a candidate the moment its last
    reference goes; uploads of the same bytes (which reuse the block) race the collector running
    every 0.1 s."""
    data_dir = tmp_path / "data"
    grace = 5
    args = [*backend.serve_args, "--gc-interval", "0.1s", "--gc-grace", f"{grace}s", "--revision-retention", "0s"]
    pool = [_data(i, random.Random(i).choice([300, 70_000, 4 * MiB + 5])) for i in range(120)]
    with running_server(data_dir, args) as server, httpx.Client(base_url=server.url, timeout=60,
                                                                 trust_env=False) as http:
        # Another test of the module may have left live files in a shared store (PostgreSQL + S3).
        earlier = backend.block_names(data_dir)
        token = server.new_account().token
        a = Api(http, token)
        for i, d in enumerate(pool):
            a.upload_ok(f"/pool/{i}", d)
        for i in range(10):  # garbage that stays garbage
            a.upload_ok(f"/junk/{i}", _data(1000 + i, 5000))
        assert a.rpc("files/delete_v2", {"path": "/junk"}).status_code == 200
        if backend.local_blocks:
            old = time.time() - 86400
            for root, _, names in os.walk(data_dir / "blobs" / "blocks"):
                for n in names:
                    os.utime(os.path.join(root, n), (old, old))
        else:
            time.sleep(grace + 1.5)  # LastModified has one-second resolution
        errors: list[str] = []
        committed: dict[str, bytes] = {}
        lock = threading.Lock()

        def worker(ids: list[int], seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as h:
                w = Api(h, token)
                for i in ids:
                    r = w.rpc("files/delete_v2", {"path": f"/pool/{i}"})
                    if r.status_code != 200:
                        errors.append(describe(r))
                    time.sleep(rng.uniform(0, 0.3))  # let the collector see the block unreferenced
                    path = f"/new/{i}"
                    if rng.random() < 0.5:
                        r = w.content("files/upload", {"path": path}, pool[i])
                    else:
                        head = pool[i][:1000]
                        sid = w.start_ok(head)
                        r = w.finish(sid, len(head), path, pool[i][len(head):])
                    if r.status_code != 200:
                        errors.append(describe(r))
                    else:
                        with lock:
                            committed[path] = pool[i]

        ids = list(range(len(pool)))
        random.Random(7).shuffle(ids)
        threads = [threading.Thread(target=worker, args=(ids[k::4], k)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors[:3]
        assert len(committed) == len(pool)
        for path, d in committed.items():
            md = a.metadata_ok(path)
            assert md["content_hash"] == content_hash(d), path
            assert a.download_bytes(path) == d, path
        # The collector did run and reclaim: only blocks of live files are left once the grace is over.
        live_blocks = {hashlib.sha256(d[o:o + 4 * MiB]).hexdigest() for d in pool for o in range(0, len(d), 4 * MiB)}

        def only_live() -> bool:
            left = backend.block_names(data_dir)
            return live_blocks <= left and left - live_blocks <= earlier

        try:
            _wait_for(only_live, 30, "the collector to leave exactly the live blocks")
        except AssertionError:
            left = backend.block_names(data_dir)
            raise AssertionError(f"live blocks missing: {sorted(live_blocks - left)[:3]}; "
                                 f"{len(left - live_blocks - earlier)} unreferenced left") from None
        log = server.log_path.read_text()
        assert "garbage collection failed" not in log
        deleted = sum(int(n) for n in re.findall(r"blocks_deleted=(\d+)", log))
        assert deleted > 0, "the collector never reclaimed a block: the race was not exercised"
