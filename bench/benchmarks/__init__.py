"""The benchmark registry: name -> (one-line description, run function), in the default run order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.benchmarks import baselines, finish_batch, finish_latency, session, small_files
from bench.config import Config
from bench.stats import Recorder

RunFn = Callable[[Config, Recorder, Path], None]

BENCHMARKS: dict[str, tuple[str, RunFn]] = {
    "baselines": ("disk write, sha256 and raw-ingest ceilings (no localbox)", baselines.run),
    "session_1gib": (
        "one 1 GiB session via append_v2 (8 and 128 MiB chunks) vs raw-ingest; peak RSS",
        session.run,
    ),
    "finish_latency": ("finish of a 1 KiB vs a 1 GiB closed session", finish_latency.run),
    "finish_batch": (
        "finish_batch of 1..1000 4 KiB files to complete on /check; finish_batch_v2 1000",
        finish_batch.run,
    ),
    "small_files": (
        "4 KiB files end to end (start(close) + finish_batch per 1000) vs raw-ingest",
        small_files.run,
    ),
}
