"""baselines: the machine's ceilings, measured in the same run as localbox.

- disk: sequential write of the big size in 4 MiB ``os.write`` calls + one fsync (new file each round);
- sha256: one core hashing the big buffer in 4 MiB updates (the per-stream limit for content_hash);
- raw-ingest: one POST of the big size to ``bench.raw_ingest`` (write + SHA-256 inline + fsync), with the
  environment localbox gets, and with the tuned-malloc environment (the documented best case).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from bench.benchmarks.common import mbps
from bench.config import Config, size_label
from bench.payload import BLOCK, big_buffer, stamp
from bench.procs import raw_ingest
from bench.stats import Recorder
from bench.wire import Connection, RawIngestClient


def disk_write(path: Path, data: memoryview) -> float:
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for offset in range(0, len(data), BLOCK):
            chunk = data[offset : offset + BLOCK]
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def sha256_time(data: memoryview) -> float:
    start = time.perf_counter()
    sha = hashlib.sha256()
    for offset in range(0, len(data), BLOCK):
        sha.update(data[offset : offset + BLOCK])
    sha.digest()
    return time.perf_counter() - start


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    buf = big_buffer(cfg.big_bytes)
    data = memoryview(buf)
    label = size_label(cfg.big_bytes)
    (workdir / "disk").mkdir()
    with raw_ingest(workdir) as plain, raw_ingest(workdir, tuned_malloc=True) as tuned:
        clients = {
            "plain": RawIngestClient(Connection(plain.port)),
            "tuned": RawIngestClient(Connection(tuned.port)),
        }
        for client in clients.values():
            client.put("warmup", b"x" * 1024)
        for round_id in range(cfg.rounds):
            stamp(buf, round_id)
            seconds = disk_write(workdir / "disk" / f"r{round_id}", data)
            disk = rec.add(f"disk write {label} 4MiB+fsync", mbps(len(data), seconds), "MB/s").values[-1]
            rec.add(f"sha256 1 core, {label}", mbps(len(data), sha256_time(data)), "MB/s")
            order = ["plain", "tuned"] if round_id % 2 == 0 else ["tuned", "plain"]
            rates: dict[str, float] = {}
            for kind in order:
                start = time.perf_counter()
                clients[kind].put(f"single-{round_id}", data)
                rates[kind] = mbps(len(data), time.perf_counter() - start)
            name = f"raw-ingest 1 POST {label}"
            rec.add(name, rates["plain"], "MB/s")
            rec.ratio(name, rates["plain"], disk, "disk write")
            rec.add(f"{name}, tuned malloc", rates["tuned"], "MB/s")
            rec.ratio(f"{name}, tuned malloc", rates["tuned"], rates["plain"], "raw-ingest")
    rec.note(
        "disk and raw-ingest write new files every round; on never-written blocks this VM does ~0.4 GB/s"
    )
