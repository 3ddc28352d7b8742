"""finish_latency: commit latency of finish for a 1 KiB session vs an already uploaded, closed big session.

A commit should be O(metadata): if finish copies or re-hashes the bytes, the big one takes seconds.  Per
round, several 1 KiB finishes run before and after the big one (their median is the round's small figure),
and the ratio big/small is paired per round: ~1 means size-independent.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.benchmarks.common import upload_session
from bench.config import Config, size_label
from bench.payload import SmallBodies, big_buffer, stamp
from bench.procs import localbox
from bench.stats import Recorder
from bench.wire import Connection, Dropbox

SMALL = 1024
SMALL_PER_ROUND = 6  # half before the big finish, half after
BIG_CHUNK = 128 * 1024 * 1024


def _timed_finish(db: Dropbox, session_id: str, size: int, path: str) -> float:
    start = time.perf_counter()
    db.finish(session_id, size, path)
    return (time.perf_counter() - start) * 1000


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    buf = big_buffer(cfg.big_bytes)
    label = size_label(cfg.big_bytes)
    bodies = SmallBodies(SMALL)
    with localbox(workdir) as lb:
        db = Dropbox(Connection(lb.server.port), lb.token)
        db.finish(db.start(b"w", close=True), 1, "/bench/warmup.bin")
        for round_id in range(cfg.rounds):
            stamp(buf, round_id, 7)
            big_id, big_size = upload_session(db, memoryview(buf), BIG_CHUNK)
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
    rec.note(f"1 KiB figure per round = median of {SMALL_PER_ROUND} finishes around the big one")
