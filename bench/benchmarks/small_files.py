"""small_files: many 4 KiB files end to end, files per second.

N client threads each loop start(close=true, 4 KiB body); the main thread collects session ids and commits
each full 1000 with one finish_batch (waiting for ``complete`` on /check) while the uploads continue, since
Dropbox asks for batches of one account to run serially.  The clock stops when the last batch is complete.
Baseline, paired per round: the same threads POSTing the same bodies to raw-ingest (new file, SHA-256,
fsync each), i.e. the request rate of the server stack with the minimum durable work per file.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bench.benchmarks.common import cpu_seconds, drain, localbox_first, run_parallel
from bench.config import Config
from bench.payload import SmallBodies
from bench.procs import Localbox, localbox, malloc_env, raw_ingest
from bench.stats import Recorder
from bench.wire import Connection, ConnectionPerThread, Dropbox, RawIngestClient, count_failures

BATCH = 1000


def localbox_files(
    cfg: Config, lb: Localbox, pool: ThreadPoolExecutor, conns: ConnectionPerThread, workers: int, tag: int
) -> tuple[float, float, int]:
    """Returns (end-to-end seconds, seconds until the last upload returned, failed entries)."""
    bodies = SmallBodies(cfg.small_size)
    total = cfg.small_files
    ids: queue.Queue[tuple[int, str]] = queue.Queue()
    lock = threading.Lock()
    indices = iter(range(total))

    def worker() -> float:
        db = Dropbox(conns.get(), lb.token)
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return time.perf_counter()
            ids.put((index, db.start(bodies.body(tag, index), close=True)))

    committer = Dropbox(Connection(lb.server.port), lb.token)
    start = time.perf_counter()
    futures: list[Future[float]] = [pool.submit(worker) for _ in range(workers)]
    pending: list[tuple[str, int, str]] = []
    committed = failures = 0
    while committed < total:
        index, session_id = drain(ids, futures)
        pending.append((session_id, cfg.small_size, f"/bench/small/t{tag}/{index // BATCH}/f{index:06d}.bin"))
        if len(pending) == BATCH or committed + len(pending) == total:
            results = committer.finish_batch_wait(pending, cfg.poll_s).entries
            failures += count_failures(results) + len(pending) - len(results)
            committed += len(pending)
            pending = []
    end = time.perf_counter()
    uploads_done = max(future.result() for future in futures)
    committer.conn.close()
    return end - start, uploads_done - start, failures


def raw_files(
    cfg: Config, pool: ThreadPoolExecutor, conns: ConnectionPerThread, workers: int, tag: int
) -> float:
    bodies = SmallBodies(cfg.small_size)

    def job(index: int) -> object:
        return RawIngestClient(conns.get()).put(f"small-{tag}-{index}", bodies.body(tag, index))

    start = time.perf_counter()
    run_parallel(pool, workers, cfg.small_files, job)
    return time.perf_counter() - start


def _warm_threads(
    pool: ThreadPoolExecutor,
    workers: int,
    token: str,
    lb_conns: ConnectionPerThread,
    raw_conns: ConnectionPerThread,
) -> None:
    """Opens every pool thread's connection to both servers before anything is timed."""
    run_parallel(pool, workers, workers * 4, lambda i: Dropbox(lb_conns.get(), token).start(b"w"))
    run_parallel(pool, workers, workers * 4, lambda i: RawIngestClient(raw_conns.get()).put(f"w{i}", b"w"))


def _round(
    cfg: Config,
    rec: Recorder,
    lb: Localbox,
    conns: tuple[ConnectionPerThread, ConnectionPerThread],
    pool: ThreadPoolExecutor,
    workers: int,
    round_id: int,
) -> None:
    """One paired round at one concurrency: localbox and raw-ingest back to back, ABBA order."""
    lb_conns, raw_conns = conns
    tag = workers * 1000 + round_id
    lb_s = lb_upload_s = raw_s = lb_cpu = client_cpu = 0.0
    failures = 0
    for side in ("localbox", "raw") if localbox_first(round_id) else ("raw", "localbox"):
        if side == "localbox":
            cpu0, client0 = cpu_seconds(lb.server.proc.pid), time.process_time()
            lb_s, lb_upload_s, failures = localbox_files(cfg, lb, pool, lb_conns, workers, tag)
            lb_cpu = (cpu_seconds(lb.server.proc.pid) - cpu0) / lb_s
            client_cpu = (time.process_time() - client0) / lb_s
        else:
            raw_s = raw_files(cfg, pool, raw_conns, workers, tag)
    if failures:
        rec.errors.append(f"small_files c{workers} round {round_id}: {failures} failed entries")
    total = cfg.small_files
    raw_rate = total / raw_s
    rec.add(f"raw-ingest 4 KiB POSTs, c{workers}", raw_rate, "req/s")
    for name, seconds in (
        (f"files end to end, c{workers}", lb_s),
        (f"start(close) uploads only, c{workers}", lb_upload_s),
    ):
        rec.add(name, total / seconds, "files/s")
        rec.ratio(name, total / seconds, raw_rate, "raw-ingest")
    rec.add(f"server CPU %, c{workers}", lb_cpu * 100, "%", False)
    # The client shares the two cores: if it nears 100% the figure is partly the client's limit.
    rec.add(f"client CPU %, c{workers}", client_cpu * 100, "%", False)


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    with localbox(workdir) as lb, raw_ingest(workdir, tuned_malloc=True) as raw:
        rec.note(f"localbox malloc env: {malloc_env(lb.server.proc.pid) or 'default'}; raw-ingest: tuned")
        for workers in cfg.concurrency:
            with ThreadPoolExecutor(workers) as pool:
                lb_conns, raw_conns = ConnectionPerThread(lb.server.port), ConnectionPerThread(raw.port)
                # Warm-up: the first requests pay for imports, database creation and connection setup.
                warm = Dropbox(Connection(lb.server.port), lb.token)
                warm.finish(warm.start(b"w", close=True), 1, f"/bench/small/warm{workers}.bin")
                _warm_threads(pool, workers, lb.token, lb_conns, raw_conns)
                for round_id in range(cfg.rounds):
                    _round(cfg, rec, lb, (lb_conns, raw_conns), pool, workers, round_id)
                for conns in (lb_conns, raw_conns):
                    conns.close()
    rec.note(
        f"{cfg.small_files} files of {cfg.small_size} B per round; one finish_batch per {BATCH}, pipelined"
    )
