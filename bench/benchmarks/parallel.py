"""parallel: aggregate upload throughput of several streams at once, against baselines with as many clients.

Per round, two steps, each run on every side back to back (order rotated per round and step):

- **four sessions**: four threads (one connection each) each upload a quarter of the big buffer (4 x 256 MiB;
  4 x 64 MiB with --quick) as one session: start, append_v2 in 8 MiB chunks (the last closes), finish.
  Baselines: raw-ingest with four clients sending the same request sequence (one fsync per request), and
  nginx-put with four clients, each one PUT of its quarter plus an fsync of the file.
- **one concurrent session**: start with ``session_type: concurrent``, then the big size (1 GiB; 256 MiB
  with --quick) as 4 MiB parts sent 8 at a time by 8 threads, every part but the last; then the last part
  with ``close: true``; then finish.  Baselines: raw-ingest and nginx-put with 8 clients sending the same
  4 MiB parts as separate files (each fsynced).

Aggregate MB/s = all bytes / wall time from the first request until the last stream is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.benchmarks.common import (
    cpu_seconds,
    mbps,
    raw_upload,
    rotated,
    run_parallel,
    target_note,
    upload_session,
)
from bench.config import Config, MiB, size_label
from bench.nginx import Nginx, nginx_or_skip
from bench.payload import big_buffer, stamp
from bench.procs import Server, localbox, raw_ingest
from bench.stats import Recorder
from bench.wire import ConnectionPerThread, Dropbox, NginxClient, RawIngestClient

STREAMS = 4
STREAM_CHUNK = 8 * MiB
PART = 4 * MiB
PART_THREADS = 8
TARGET_RAW = 0.8  # four streams >= 0.8x raw-ingest with four clients


@dataclass
class _Timing:
    upload_s: float  # until every stream's data is in (last append / PUT+fsync)
    total_s: float  # the same plus the commits (finish); equal to upload_s for the baselines
    server_cpu: float  # server CPU seconds per wall second (1.0 = one core)
    client_cpu: float


def _timed(server: Server, work: Callable[[], float]) -> _Timing:
    """Runs ``work()``, which returns the time its data path ended; CPU of the server tree and client."""
    cpu0, client0 = cpu_seconds(server.proc.pid), time.process_time()
    start = time.perf_counter()
    upload_end = work()
    total = time.perf_counter() - start
    return _Timing(
        upload_end - start,
        total,
        (cpu_seconds(server.proc.pid) - cpu0) / total,
        (time.process_time() - client0) / total,
    )


@dataclass
class _Sides:
    """Connections of one side per thread, and what the jobs need besides."""

    pool: ThreadPoolExecutor
    lb_conns: ConnectionPerThread
    token: str
    raw_conns: ConnectionPerThread
    ng: Nginx | None
    ng_conns: ConnectionPerThread | None

    def nginx_put(self, name: str, body: memoryview) -> None:
        assert self.ng is not None and self.ng_conns is not None
        NginxClient(self.ng_conns.get()).put(name, body)
        self.ng.fsync(name)

    def close(self) -> None:
        for conns in (self.lb_conns, self.raw_conns, self.ng_conns):
            if conns is not None:
                conns.close()


def _quarters(data: memoryview) -> list[memoryview]:
    size = len(data) // STREAMS
    return [data[i * size : (i + 1) * size] for i in range(STREAMS)]


def _streams_localbox(s: _Sides, data: memoryview, round_id: int) -> Callable[[], float]:
    def job(index: int, piece: memoryview) -> float:
        db = Dropbox(s.lb_conns.get(), s.token)
        session_id, offset = upload_session(db, piece, STREAM_CHUNK)
        uploaded = time.perf_counter()
        db.finish(session_id, offset, f"/bench/parallel/r{round_id}-stream{index}.bin")
        return uploaded

    def work() -> float:
        futures = [s.pool.submit(job, i, piece) for i, piece in enumerate(_quarters(data))]
        return max(future.result() for future in futures)

    return work


def _streams_raw(s: _Sides, data: memoryview, round_id: int) -> Callable[[], float]:
    def job(index: int, piece: memoryview) -> None:
        raw_upload(RawIngestClient(s.raw_conns.get()), f"streams-r{round_id}-{index}", piece, STREAM_CHUNK)

    def work() -> float:
        futures = [s.pool.submit(job, i, piece) for i, piece in enumerate(_quarters(data))]
        for future in futures:
            future.result()
        return time.perf_counter()

    return work


def _streams_nginx(s: _Sides, data: memoryview, round_id: int) -> Callable[[], float]:
    def work() -> float:
        futures = [
            s.pool.submit(s.nginx_put, f"streams-r{round_id}-{i}", piece)
            for i, piece in enumerate(_quarters(data))
        ]
        for future in futures:
            future.result()
        return time.perf_counter()

    return work


def _parts(data: memoryview) -> list[int]:
    return list(range(0, len(data), PART))


def _concurrent_localbox(s: _Sides, data: memoryview, round_id: int) -> Callable[[], float]:
    def work() -> float:
        db = Dropbox(s.lb_conns.get(), s.token)
        session_id = db.start(concurrent=True)
        *first, last = _parts(data)

        def job(index: int) -> None:
            offset = first[index]
            Dropbox(s.lb_conns.get(), s.token).append(session_id, offset, data[offset : offset + PART])

        run_parallel(s.pool, PART_THREADS, len(first), job)
        db.append(session_id, last, data[last:], close=True)
        uploaded = time.perf_counter()
        db.finish(session_id, len(data), f"/bench/parallel/r{round_id}-concurrent.bin")
        return uploaded

    return work


def _concurrent_baseline(
    s: _Sides, data: memoryview, send: Callable[[str, memoryview], None], round_id: int
) -> Callable[[], float]:
    def work() -> float:
        *first, last = _parts(data)
        run_parallel(
            s.pool,
            PART_THREADS,
            len(first),
            lambda i: send(f"parts-r{round_id}-{i}", data[first[i] : first[i] + PART]),
        )
        send(f"parts-r{round_id}-last", data[last:])
        return time.perf_counter()

    return work


def _record(
    rec: Recorder,
    base: str,
    nbytes: int,
    sides: dict[str, _Timing],
    clients: int,
    raw_label: str,
    ng_label: str,
) -> None:
    lb = sides["localbox"]
    raw_rate = mbps(nbytes, sides["raw"].total_s)
    rec.add(raw_label, raw_rate, "MB/s")
    for name, seconds in ((f"upload {base}", lb.upload_s), (f"upload+finish {base}", lb.total_s)):
        rec.add(name, mbps(nbytes, seconds), "MB/s")
        rec.ratio(name, mbps(nbytes, seconds), raw_rate, f"raw-ingest c{clients}")
    if "nginx" in sides:
        ng_rate = mbps(nbytes, sides["nginx"].total_s)
        rec.add(ng_label, ng_rate, "MB/s")
        name = f"upload {base} vs nginx"
        rec.add(name, mbps(nbytes, lb.upload_s), "MB/s")
        rec.ratio(name, mbps(nbytes, lb.upload_s), ng_rate, f"nginx-put c{clients}")
    rec.add(f"finish after {base}", (lb.total_s - lb.upload_s) * 1000, "ms", False)
    rec.add(f"server CPU % during {base}", lb.server_cpu * 100, "%", False)
    rec.add(f"client CPU % during {base}", lb.client_cpu * 100, "%", False)


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    buf = big_buffer(cfg.big_bytes)
    data = memoryview(buf)
    label, quarter = size_label(cfg.big_bytes), size_label(cfg.big_bytes // STREAMS)
    streams_base = f"{STREAMS} sessions x {quarter}"
    conc_base = f"concurrent session {label}"
    with (
        localbox(workdir) as lb,
        raw_ingest(workdir, tuned_malloc=True) as raw_server,
        nginx_or_skip(workdir, rec) as ng,
        ThreadPoolExecutor(PART_THREADS) as pool,
    ):
        s = _Sides(
            pool,
            ConnectionPerThread(lb.server.port),
            lb.token,
            ConnectionPerThread(raw_server.port),
            ng,
            ConnectionPerThread(ng.server.port) if ng is not None else None,
        )
        servers = {"localbox": lb.server, "raw": raw_server}
        if ng is not None:
            servers["nginx"] = ng.server
        try:
            # Warm-up: imports, database, and one connection per pool thread on every side.
            warm = Dropbox(s.lb_conns.get(), lb.token)
            warm.finish(warm.start(b"w" * 1024, close=True), 1024, "/bench/warmup.bin")
            names = list(servers)
            for round_id in range(cfg.rounds):
                for step in range(2):
                    stamp(buf, round_id, 20 + step)
                    timings: dict[str, _Timing] = {}
                    for side in rotated(names, round_id, step):
                        timings[side] = _timed(servers[side], _work(s, side, step, data, round_id))
                    if step == 0:
                        raw_label = f"raw-ingest {STREAMS} x {quarter}, {STREAMS} clients"
                        ng_label = f"nginx-put {STREAMS} x {quarter}, {STREAMS} clients"
                        _record(rec, streams_base, len(data), timings, STREAMS, raw_label, ng_label)
                    else:
                        raw_label = f"raw-ingest {label} as {size_label(PART)} POSTs, {PART_THREADS} clients"
                        ng_label = f"nginx-put {label} as {size_label(PART)} PUTs, {PART_THREADS} clients"
                        _record(rec, conc_base, len(data), timings, PART_THREADS, raw_label, ng_label)
        finally:
            s.close()
    rec.note(
        f"{streams_base}: each start + append_v2 in {size_label(STREAM_CHUNK)} chunks + finish; "
        f"concurrent session {label}: {size_label(PART)} parts, {PART_THREADS} in flight, last one closes; "
        "'finish after' = last finish end - last upload end"
    )
    target_note(rec, f"upload {streams_base}", TARGET_RAW, f"four streams >= {TARGET_RAW}x raw-ingest")
    rec.note("concurrent session: no target in the issue; baselines get the same parts as separate files")


def _work(s: _Sides, side: str, step: int, data: memoryview, round_id: int) -> Callable[[], float]:
    if step == 0:
        makers = {"localbox": _streams_localbox, "raw": _streams_raw, "nginx": _streams_nginx}
        return makers[side](s, data, round_id)
    if side == "localbox":
        return _concurrent_localbox(s, data, round_id)

    def raw_send(name: str, body: memoryview) -> None:
        RawIngestClient(s.raw_conns.get()).put(name, body)

    return _concurrent_baseline(s, data, raw_send if side == "raw" else s.nginx_put, round_id)
