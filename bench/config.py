"""Run parameters, derived once from the command line (full or ``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class Config:
    rounds: int
    quick: bool
    big_bytes: int  # size of the "1 GiB" uploads (256 MiB with --quick)
    chunk_sizes: tuple[int, ...]  # append_v2 chunk sizes of the big session
    batch_sizes: tuple[int, ...]  # finish_batch entry counts
    batch_v2_size: int  # finish_batch_v2 entry count
    small_size: int  # bytes per small file
    small_files: int  # files per round in small_files
    concurrency: tuple[int, ...]  # client threads for parallel small uploads
    poll_s: float  # /check poll interval
    workroot: Path | None  # parent of the per-benchmark temp dirs (None: the system temp dir)
    keep: bool  # keep the temp dirs (data, logs) for inspection

    @classmethod
    def make(
        cls,
        quick: bool,
        rounds: int | None,
        concurrency: tuple[int, ...] | None,
        workroot: Path | None,
        keep: bool,
    ) -> Config:
        return cls(
            rounds=rounds if rounds is not None else (2 if quick else 3),
            quick=quick,
            big_bytes=256 * MiB if quick else GiB,
            chunk_sizes=(8 * MiB, 128 * MiB),
            batch_sizes=(1, 10, 100, 1000),
            batch_v2_size=1000,
            small_size=4096,
            small_files=2000 if quick else 5000,
            concurrency=concurrency or (8,),
            poll_s=0.002,
            workroot=workroot,
            keep=keep,
        )


def size_label(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} B"
