"""download: files/download of a big file (1 GiB; 256 MiB with --quick) against nginx serving the same bytes.

Setup (not timed): the big buffer is uploaded to localbox as one session (128 MiB appends) and committed, and
the same bytes are written straight into nginx's document root (+ fsync); each side is downloaded once to
warm up, so both serve from the page cache.  Per round, one client downloads the file from each side back to
back (order alternating): ``POST /2/files/download`` with ``Dropbox-API-Arg: {"path": ...}`` and no body,
and ``GET /<name>`` from nginx (sendfile).  The client reads each body into one reused 1 MiB buffer.
Without nginx the localbox figures are still reported, without a ratio.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.benchmarks.common import cpu_seconds, mbps, rotated, target_note, upload_session
from bench.config import Config, MiB, size_label
from bench.nginx import nginx_or_skip
from bench.payload import big_buffer, stamp
from bench.procs import Server, localbox
from bench.stats import Recorder
from bench.wire import Connection, Dropbox, NginxClient

PATH = "/bench/download.bin"
NAME = "download.bin"
SINK = 1 * MiB
TARGET = 0.8  # download >= 0.8x nginx


def _write_file(path: Path, data: memoryview) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


@dataclass
class _Timing:
    seconds: float
    server_cpu: float  # server CPU seconds per wall second (1.0 = one core)
    client_cpu: float


def _timed(server: Server, fetch: Callable[[], int], nbytes: int) -> _Timing:
    cpu0, client0 = cpu_seconds(server.proc.pid), time.process_time()
    start = time.perf_counter()
    got = fetch()
    seconds = time.perf_counter() - start
    if got != nbytes:
        raise RuntimeError(f"{server.name} sent {got} bytes, expected {nbytes}")
    return _Timing(
        seconds,
        (cpu_seconds(server.proc.pid) - cpu0) / seconds,
        (time.process_time() - client0) / seconds,
    )


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    buf = big_buffer(cfg.big_bytes)
    data = memoryview(buf)
    label = size_label(cfg.big_bytes)
    sink = bytearray(SINK)
    with localbox(workdir) as lb, nginx_or_skip(workdir, rec) as ng:
        db = Dropbox(Connection(lb.server.port), lb.token)
        stamp(buf, 0, 30)
        db.finish(*upload_session(db, data, 128 * MiB), PATH)
        fetchers: dict[str, Callable[[], int]] = {"localbox": lambda: db.download(PATH, sink).nbytes}
        servers: dict[str, Server] = {"localbox": lb.server}
        if ng is not None:
            _write_file(ng.root / NAME, data)
            client = NginxClient(Connection(ng.server.port))
            fetchers["nginx"] = lambda: client.get(NAME, sink).nbytes
            servers["nginx"] = ng.server
        for fetch in fetchers.values():  # warm-up: page cache, imports, connections
            fetch()
        for round_id in range(cfg.rounds):
            timings = {
                side: _timed(servers[side], fetchers[side], len(data))
                for side in rotated(list(fetchers), round_id)
            }
            _record(rec, label, len(data), timings)
    name = f"download {label} (files/download)"
    target_note(rec, name, TARGET, f"download >= {TARGET}x nginx GET")


def _record(rec: Recorder, label: str, nbytes: int, timings: dict[str, _Timing]) -> None:
    lb = timings["localbox"]
    name = f"download {label} (files/download)"
    rec.add(name, mbps(nbytes, lb.seconds), "MB/s")
    if "nginx" in timings:
        ng_rate = mbps(nbytes, timings["nginx"].seconds)
        rec.add(f"nginx GET {label}", ng_rate, "MB/s")
        rec.ratio(name, mbps(nbytes, lb.seconds), ng_rate, "nginx GET")
        rec.add(f"nginx CPU % during GET {label}", timings["nginx"].server_cpu * 100, "%", False)
    rec.add(f"server CPU % during download {label}", lb.server_cpu * 100, "%", False)
    rec.add(f"client CPU % during download {label}", lb.client_cpu * 100, "%", False)
