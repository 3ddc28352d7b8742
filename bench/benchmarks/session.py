"""session_1gib: one upload session of the big size via append_v2, in 8 MiB and in 128 MiB chunks.

Each round uploads the same bytes to localbox and to raw-ingest with the same request sequence (start, then
one request per chunk; raw-ingest fsyncs each request as a durable append must), back to back in ABBA order.
Figures:
- upload MB/s: start + every append_v2 (the last one closes), i.e. the data path;
- end-to-end MB/s: the same plus finish (commit), against the same raw-ingest time;
- peak RSS: VmHWM of the server process(es), reset before the upload, so it is this upload's peak;
  raw-ingest's peak for the same bytes is the baseline;
- vs nginx: the same upload MB/s against nginx-put (one client): the whole size in one PUT to nginx's WebDAV
  module, plus an fsync of the file (bench/nginx.py), measured in the same round (skipped without nginx).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.benchmarks.common import cpu_seconds, mbps, raw_upload, rotated, target_note, upload_session
from bench.config import Config, size_label
from bench.nginx import Nginx, nginx_or_skip
from bench.payload import big_buffer, stamp
from bench.procs import (
    Localbox,
    RssSampler,
    Server,
    localbox,
    malloc_env,
    process_tree,
    raw_ingest,
    reset_peak_rss,
    status_kib,
)
from bench.stats import Recorder
from bench.wire import Connection, Dropbox, NginxClient, RawIngestClient


@dataclass
class _Side:
    """One side of a paired upload: seconds for the data path and in total, peak RSS, CPU fractions."""

    upload_s: float = 0.0
    total_s: float = 0.0
    peak_mib: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0


def _peak_rss_mib(server: Server, sampler: RssSampler, reset_ok: bool) -> float:
    """Sum of VmHWM over the server's processes when the reset worked, else the sampled peak of VmRSS."""
    if reset_ok:
        return sum(status_kib(pid, "VmHWM") for pid in process_tree(server.proc.pid)) / 1024
    return sampler.peak_kib / 1024


def _measure(server: Server, upload: Callable[[], None], finish: Callable[[], None]) -> _Side:
    """Runs ``upload`` then ``finish`` while watching the server's CPU time and peak RSS."""
    reset_ok = all([reset_peak_rss(pid) for pid in process_tree(server.proc.pid)])
    cpu0, client0 = cpu_seconds(server.proc.pid), time.process_time()
    side = _Side()
    with RssSampler(server.proc.pid) as sampler:
        start = time.perf_counter()
        upload()
        side.upload_s = time.perf_counter() - start
        finish()
        side.total_s = time.perf_counter() - start
    side.server_cpu = (cpu_seconds(server.proc.pid) - cpu0) / side.total_s
    side.client_cpu = (time.process_time() - client0) / side.total_s
    side.peak_mib = _peak_rss_mib(server, sampler, reset_ok)
    return side


def _localbox_side(lb: Localbox, db: Dropbox, data: memoryview, chunk: int, path: str) -> _Side:
    state: dict[str, tuple[str, int]] = {}

    def upload() -> None:
        state["cursor"] = upload_session(db, data, chunk)

    def finish() -> None:
        db.finish(*state["cursor"], path)

    return _measure(lb.server, upload, finish)


def _nginx_side(ng: Nginx, client: NginxClient, data: memoryview, name: str) -> _Side:
    """One PUT of the whole buffer (upload_s), then the client's fsync of the file (included in total_s)."""
    return _measure(ng.server, lambda: client.put(name, data), lambda: ng.fsync(name))


def _record_nginx(rec: Recorder, label: str, base: str, nbytes: int, lb: _Side, ng: _Side) -> None:
    nginx_rate = mbps(nbytes, ng.total_s)
    rec.add(f"nginx-put {label} 1 PUT+fsync", nginx_rate, "MB/s")
    rec.add(f"nginx-put {label} 1 PUT, no fsync", mbps(nbytes, ng.upload_s), "MB/s")
    name = f"upload {base} vs nginx"
    rec.add(name, mbps(nbytes, lb.upload_s), "MB/s")
    rec.ratio(name, mbps(nbytes, lb.upload_s), nginx_rate, "nginx-put")


def _record(rec: Recorder, base: str, nbytes: int, lb: _Side, raw: _Side) -> None:
    raw_rate = mbps(nbytes, raw.total_s)
    rec.add(f"raw-ingest {base}", raw_rate, "MB/s")
    for name, seconds in ((f"upload {base}", lb.upload_s), (f"upload+finish {base}", lb.total_s)):
        rec.add(name, mbps(nbytes, seconds), "MB/s")
        rec.ratio(name, mbps(nbytes, seconds), raw_rate, "raw-ingest")
    rec.add(f"finish after {base}", (lb.total_s - lb.upload_s) * 1000, "ms", False)
    rec.add(f"server CPU % during {base}", lb.server_cpu * 100, "%", False)
    rec.add(f"client CPU % during {base}", lb.client_cpu * 100, "%", False)
    name = f"peak RSS during {base}"
    rec.add(name, lb.peak_mib, "MiB", False)
    rec.ratio(name, lb.peak_mib, raw.peak_mib, "raw-ingest peak")


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    buf = big_buffer(cfg.big_bytes)
    data = memoryview(buf)
    label = size_label(cfg.big_bytes)
    with (
        localbox(workdir) as lb,
        raw_ingest(workdir, tuned_malloc=True) as raw_server,
        nginx_or_skip(workdir, rec) as ng,
    ):
        db = Dropbox(Connection(lb.server.port), lb.token)
        raw = RawIngestClient(Connection(raw_server.port))
        ngc = NginxClient(Connection(ng.server.port)) if ng is not None else None
        # Warm-up: first requests pay for imports, database creation and connection setup.
        db.finish(db.start(b"w" * 1024, close=True), 1024, "/bench/warmup.bin")
        raw.put("warmup", b"w" * 1024)
        if ngc is not None:
            ngc.put("warmup", b"w" * 1024)
        names = ["localbox", "raw"] + (["nginx"] if ng is not None else [])
        rec.note(f"localbox malloc env: {malloc_env(lb.server.proc.pid) or 'default'}; raw-ingest: tuned")
        rec.add("localbox idle RSS", status_kib(lb.server.proc.pid, "VmRSS") / 1024, "MiB", False)
        for round_id in range(cfg.rounds):
            for step, chunk in enumerate(cfg.chunk_sizes):
                stamp(buf, round_id, chunk)
                chunk_label = size_label(chunk)
                sides: dict[str, _Side] = {}
                for side in rotated(names, round_id, step):
                    if side == "localbox":
                        path = f"/bench/session/r{round_id}-{chunk_label}.bin"
                        sides[side] = _localbox_side(lb, db, data, chunk, path)
                    elif side == "nginx" and ng is not None and ngc is not None:
                        sides[side] = _nginx_side(ng, ngc, data, f"session-{round_id}-{chunk}")
                    else:
                        upload = functools.partial(
                            raw_upload, raw, f"session-{round_id}-{chunk}", data, chunk
                        )
                        sides[side] = _measure(raw_server, upload, lambda: None)
                base = f"{label} in {chunk_label} chunks"
                _record(rec, base, len(data), sides["localbox"], sides["raw"])
                if "nginx" in sides:
                    _record_nginx(rec, label, base, len(data), sides["localbox"], sides["nginx"])
    rec.note(
        "peak RSS: VmHWM of the server process tree, reset via /proc/<pid>/clear_refs before each upload"
    )
    for chunk in cfg.chunk_sizes:
        name = f"upload {label} in {size_label(chunk)} chunks"
        target_note(rec, name, 0.8, f"{name} >= 0.8x raw-ingest")
        target_note(rec, f"{name} vs nginx", 1.0, f"{name} >= 1.0x nginx-put (one client)")
