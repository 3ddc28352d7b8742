"""The benchmark registry: name -> (one-line description, run function), in the default run order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.benchmarks import (
    baselines,
    download,
    finish_batch,
    finish_batch_pg,
    finish_latency,
    metadata_load,
    parallel,
    rclone_copy,
    s3_session,
    session,
    small_files,
)
from bench.config import Config
from bench.stats import Recorder

RunFn = Callable[[Config, Recorder, Path], None]

BENCHMARKS: dict[str, tuple[str, RunFn]] = {
    "baselines": ("disk write, sha256 and raw-ingest ceilings (no localbox)", baselines.run),
    "session_1gib": (
        "one 1 GiB session via append_v2 (8 and 128 MiB chunks) vs raw-ingest; peak RSS",
        session.run,
    ),
    "parallel": (
        "4 sessions x 256 MiB in parallel; 1 concurrent session, 4 MiB parts x8; vs raw-ingest and nginx",
        parallel.run,
    ),
    "finish_latency": ("finish of a 1 KiB vs a 4 GiB closed session (1 GiB quick)", finish_latency.run),
    "download": ("files/download of a 1 GiB file vs nginx GET of the same bytes", download.run),
    "finish_batch": (
        "finish_batch of 1..1000 4 KiB files to complete on /check; finish_batch_v2 1000",
        finish_batch.run,
    ),
    "finish_batch_pg": (
        "finish_batch(_v2) of 1000 4 KiB files on PostgreSQL (own database) vs SQLite; statements per entry",
        finish_batch_pg.run,
    ),
    "small_files": (
        "4 KiB files end to end (start(close) + finish_batch per 1000) vs raw-ingest",
        small_files.run,
    ),
    "metadata_load": (
        "get_metadata / list_folder(+continue) with 1M files, N clients and 500 req/s, vs check/user",
        metadata_load.run,
    ),
    "rclone_copy": (
        "Debian rclone: copy 1000 x 1 KiB files, batch mode sync, --transfers 4 and 16, over HTTPS",
        rclone_copy.run,
    ),
    "s3_session": (
        "one 512 MiB session (256 quick) through localbox on S3 (moto on loopback) vs local disk, raw PUTs",
        s3_session.run,
    ),
}
