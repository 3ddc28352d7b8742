"""Helpers shared by the benchmarks: paired ordering, the big upload, parallel small uploads, CPU time."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bench.procs import process_tree
from bench.stats import Recorder, fmt
from bench.wire import ConnectionPerThread, Dropbox, RawIngestClient

MB = 1_000_000  # throughput is in decimal MB/s, as dd and the ceilings document report it


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / MB / seconds if seconds > 0 else 0.0


def localbox_first(round_id: int, step: int = 0) -> bool:
    """ABBA order: alternate which side of a pair runs first, so drift within a round (page cache filling,
    writeback, host noise) does not always hit the same side."""
    return (round_id + step) % 2 == 0


def upload_session(db: Dropbox, data: memoryview, chunk: int) -> tuple[str, int]:
    """start (empty), then append_v2 in ``chunk``-byte slices, closing with the last; returns (id, size)."""
    session_id = db.start()
    offset = 0
    while offset < len(data):
        piece = data[offset : offset + chunk]
        db.append(session_id, offset, piece, close=offset + len(piece) >= len(data))
        offset += len(piece)
    return session_id, offset


def raw_upload(raw: RawIngestClient, name: str, data: memoryview, chunk: int) -> None:
    """The same request sequence against raw-ingest: one request per chunk, appended to one file."""
    offset = 0
    while offset < len(data):
        piece = data[offset : offset + chunk]
        raw.put(name, piece, append=offset > 0, close=offset + len(piece) >= len(data))
        offset += len(piece)


def run_parallel(
    pool: ThreadPoolExecutor, workers: int, total: int, job: Callable[[int], object]
) -> tuple[list[object], float]:
    """Runs ``job(i)`` for i in range(total) on ``workers`` threads; returns (results by i, last finish time).

    Each worker takes the next index from a shared iterator (``next`` on an iterator is atomic under the GIL),
    so fast workers are never idle waiting for a fixed share.
    """
    indices = iter(range(total))
    lock = threading.Lock()
    results: list[object] = [None] * total

    def worker() -> float:
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return time.perf_counter()
            results[index] = job(index)

    futures = [pool.submit(worker) for _ in range(workers)]
    ends = [future.result() for future in futures]
    return results, max(ends)


def start_small_sessions(
    pool: ThreadPoolExecutor, conns: ConnectionPerThread, token: str, bodies: list[bytes], workers: int
) -> list[str]:
    """start(close=true, body) for every body in parallel; returns the session ids in order."""

    def job(index: int) -> str:
        return Dropbox(conns.get(), token).start(bodies[index], close=True)

    results, _ = run_parallel(pool, workers, len(bodies), job)
    return [str(result) for result in results]


def drain(q: queue.Queue[tuple[int, str]], futures: list[Future[float]]) -> tuple[int, str]:
    """``q.get()`` that raises a worker's exception instead of waiting forever for its missing item."""
    while True:
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            for future in futures:
                if future.done() and future.exception() is not None:
                    future.result()


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> float:
    """User+system CPU seconds of a process tree (from /proc/<pid>/stat), for CPU-% figures."""
    total = 0.0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def rotated(names: list[str], round_id: int, step: int = 0) -> list[str]:
    """ABBA generalised to three or more sides: each side goes first equally often over the rounds."""
    shift = (round_id + step) % len(names)
    return names[shift:] + names[:shift]


def target_note(rec: Recorder, figure: str, bound: float, text: str, at_most: bool = False) -> None:
    """Notes a target (a bound on the paired median ratio of ``figure``) and whether this run met it."""
    found = rec.figures.get(figure)
    ratio = found.summary()["ratio_median"] if found is not None else None
    if ratio is None:
        verdict = "not measured"
    else:
        met = ratio <= bound if at_most else ratio >= bound
        verdict = f"median x{fmt(ratio)}: {'met' if met else 'NOT met'}"
    rec.note(f"target: {text} -> {verdict}")
