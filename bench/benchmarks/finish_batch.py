"""finish_batch: time from the finish_batch call to ``complete`` on /check, for 1..1000 small files.

The sessions (4 KiB each, start with close=true and the body) are uploaded in parallel first and are not
timed.  /check is polled every 2 ms, so the figure resolves commit latency to ~2 ms plus one round trip.
finish_batch_v2 (synchronous) is timed for the largest batch.  Baseline: the median round trip of a trivial
RPC (/check with an unknown job id) measured in the same round, i.e. the floor of any call.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.benchmarks.common import start_small_sessions
from bench.config import Config
from bench.payload import SmallBodies
from bench.procs import localbox
from bench.stats import Recorder
from bench.wire import Connection, ConnectionPerThread, Dropbox, count_failures

RTT_SAMPLES = 50


def rpc_round_trip_ms(db: Dropbox) -> float:
    samples = []
    for _ in range(RTT_SAMPLES):
        start = time.perf_counter()
        db.rpc(
            "files/upload_session/finish_batch/check", {"async_job_id": "bench-unknown"}, ok=(200, 400, 409)
        )
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    bodies = SmallBodies(cfg.small_size)
    workers = cfg.concurrency[-1]
    with localbox(workdir) as lb, ThreadPoolExecutor(workers) as pool:
        conns = ConnectionPerThread(lb.server.port)
        db = Dropbox(Connection(lb.server.port), lb.token)
        warm = start_small_sessions(
            pool, conns, lb.token, [bodies.body(99, i) for i in range(workers)], workers
        )
        db.finish_batch_wait([(sid, cfg.small_size, f"/bench/warm/{i}.bin") for i, sid in enumerate(warm)])
        for round_id in range(cfg.rounds):
            rtt = rpc_round_trip_ms(db)
            rec.add("rpc round trip (baseline)", rtt, "ms", False)
            cases = [(n, "finish_batch") for n in cfg.batch_sizes] + [(cfg.batch_v2_size, "finish_batch_v2")]
            for n, route in cases:
                tag = round_id * 10_000 + n + (5000 if route.endswith("v2") else 0)
                ids = start_small_sessions(
                    pool, conns, lb.token, [bodies.body(tag, i) for i in range(n)], workers
                )
                entries = [
                    (sid, cfg.small_size, f"/bench/{route}/r{round_id}-n{n}/f{i:04d}.bin")
                    for i, sid in enumerate(ids)
                ]
                start = time.perf_counter()
                if route == "finish_batch":
                    outcome = db.finish_batch_wait(entries, cfg.poll_s)
                    results, polls, launch_ms = outcome.entries, outcome.polls, outcome.launch_s * 1000
                else:
                    results, polls, launch_ms = db.finish_batch_v2(entries), 0, 0.0
                ms = (time.perf_counter() - start) * 1000
                failures = count_failures(results)
                if failures or len(results) != n:
                    rec.errors.append(f"{route} {n}: {failures} failed entries, {len(results)} results")
                name = f"{route} {n} x {cfg.small_size // 1024} KiB"
                rec.add(name, ms, "ms", False)
                rec.ratio(name, ms, rtt, "rpc round trip")
                if route == "finish_batch" and n == max(cfg.batch_sizes):
                    rec.add(f"/check polls for {n}", polls, "polls", False)
                if route == "finish_batch":
                    # How much of the latency the launch call itself takes (it should answer at once).
                    rec.add(f"finish_batch {n}: launch reply", launch_ms, "ms", False)
        conns.close()
    rec.note(f"sessions uploaded by {workers} client threads before timing")
    rec.note(f"/check polled every {cfg.poll_s * 1000:g} ms")
