"""finish_latency: commit latency of finish for a 1 KiB session vs an already uploaded, closed big session.

A commit should be O(metadata): if finish copies or re-hashes the bytes, the big one takes seconds.  Per
round, several 1 KiB finishes run before and after the big one (their median is the round's small figure),
and the ratio big/small is paired per round: ~1 means size-independent.

The big session is 4 GiB (1 GiB with --quick), i.e. four times the big size: the 1 GiB buffer is uploaded
four times in 128 MiB appends, re-stamped before each pass, so every 4 MiB block is distinct (no dedup).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.benchmarks.common import target_note
from bench.config import Config, size_label
from bench.payload import SmallBodies, big_buffer, stamp
from bench.procs import localbox
from bench.stats import Recorder
from bench.wire import Connection, Dropbox

SMALL = 1024
SMALL_PER_ROUND = 6  # half before the big finish, half after
BIG_CHUNK = 128 * 1024 * 1024
PASSES = 4  # the big session is PASSES x the big buffer: 4 GiB, 1 GiB with --quick
TARGET = 1.2  # finish of the big session within 1.2x the finish of a 1 KiB one
P99_FINISHES = 200  # single finishes timed per round for the p99 figure (target: < 20 ms)


def _upload_passes(db: Dropbox, buf: bytearray, round_id: int) -> tuple[str, int]:
    """start (empty), then PASSES x len(buf) in BIG_CHUNK appends (the last closes); returns (id, size)."""
    data = memoryview(buf)
    total = PASSES * len(buf)
    session_id = db.start()
    offset = 0
    for index in range(PASSES):
        stamp(buf, round_id, 7 + index)
        for start in range(0, len(buf), BIG_CHUNK):
            piece = data[start : start + BIG_CHUNK]
            db.append(session_id, offset, piece, close=offset + len(piece) >= total)
            offset += len(piece)
    return session_id, offset


def _timed_finish(db: Dropbox, session_id: str, size: int, path: str) -> float:
    start = time.perf_counter()
    db.finish(session_id, size, path)
    return (time.perf_counter() - start) * 1000


def _p99_of_finishes(db: Dropbox, bodies: SmallBodies, round_id: int) -> float:
    """The tail of single-finish latency: P99_FINISHES closed 1 KiB sessions finished one by one."""
    ids = [db.start(bodies.body(round_id, 1000 + i), close=True) for i in range(P99_FINISHES)]
    times = sorted(_timed_finish(db, sid, SMALL, f"/bench/finish/r{round_id}-p99-{i}.bin")
                   for i, sid in enumerate(ids))
    return times[min(len(times) - 1, round(0.99 * len(times)))]


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    buf = big_buffer(cfg.big_bytes)
    label = size_label(PASSES * cfg.big_bytes)
    bodies = SmallBodies(SMALL)
    with localbox(workdir) as lb:
        db = Dropbox(Connection(lb.server.port), lb.token)
        db.finish(db.start(b"w", close=True), 1, "/bench/warmup.bin")
        for round_id in range(cfg.rounds):
            big_id, big_size = _upload_passes(db, buf, round_id)
            small_ids = [db.start(bodies.body(round_id, i), close=True) for i in range(SMALL_PER_ROUND)]
            # Let writeback of the big upload settle a little so it does not land on whichever finish is next.
            time.sleep(0.5)
            small_ms = []
            half = SMALL_PER_ROUND // 2
            for i, session_id in enumerate(small_ids[:half]):
                small_ms.append(
                    _timed_finish(db, session_id, SMALL, f"/bench/finish/r{round_id}-small{i}.bin")
                )
            big_ms = _timed_finish(db, big_id, big_size, f"/bench/finish/r{round_id}-big.bin")
            for i, session_id in enumerate(small_ids[half:], half):
                small_ms.append(
                    _timed_finish(db, session_id, SMALL, f"/bench/finish/r{round_id}-small{i}.bin")
                )
            small = statistics.median(small_ms)
            rec.add("finish 1 KiB session", small, "ms", False)
            name = f"finish {label} session"
            rec.add(name, big_ms, "ms", False)
            rec.ratio(name, big_ms, small, "finish 1 KiB")
            rec.add("finish 1 KiB p99", _p99_of_finishes(db, bodies, round_id), "ms", False)
    rec.note(f"1 KiB figure per round = median of {SMALL_PER_ROUND} finishes around the big one")
    rec.note(f"finish 1 KiB p99 = 99th percentile of {P99_FINISHES} sequential finishes per round")
    name = f"finish {label} session"
    target_note(rec, name, TARGET, f"{name} <= {TARGET}x finish 1 KiB", at_most=True)
