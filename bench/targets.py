"""The performance targets of the issue, evaluated from a results JSON.

Each target names the benchmark and a pattern of the figure names it reads (sizes differ between a full and a
``--quick`` run, and other benchmarks add figures), and whether it bounds the paired ratio or the value
itself.  When several figures match (e.g. both chunk sizes of ``session_1gib``) every one must meet the
bound.  A target none of whose figures are in the JSON is "not measured": nothing is estimated.  The figure
names are listed in bench/README.md ("Figures the report reads").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bench.loadgen import BUSY_LAG_MS

MET = "met"
NOT_MET = "not met"
NOT_MEASURED = "not measured"

MIB_PER_MB = 1_000_000 / 1_048_576


@dataclass(frozen=True, slots=True)
class Target:
    text: str  # the target as the issue states it
    benchmark: str
    pattern: str  # regular expression, full match, on figure names of ``benchmark``
    bound: float
    use_ratio: bool  # bound the paired median ratio (else the median value)
    at_most: bool = False  # value/ratio must be below the bound (else at least the bound)
    scale: float = 1.0  # multiply the value by this before comparing (unit conversion)
    caveat: str = ""  # said next to the verdict, whatever it is


TARGETS: tuple[Target, ...] = (
    Target(
        "upload, one stream >= 0.8x raw-ingest",
        "session_1gib",
        r"upload \S+ \S+ in \S+ \S+ chunks",
        0.8,
        True,
    ),
    Target(
        "upload, one stream >= 1.0x nginx-put",
        "session_1gib",
        r"upload \S+ \S+ in \S+ \S+ chunks vs nginx",
        1.0,
        True,
    ),
    Target("upload, four streams >= 0.8x raw-ingest", "parallel", r"upload 4 sessions x \S+ \S+", 0.8, True),
    Target(
        "finish of 4 GiB within 1.2x finish of 1 KiB",
        "finish_latency",
        r"finish (?!1 KiB)\S+ \S+ session",
        1.2,
        True,
        at_most=True,
    ),
    Target("p99 of a single finish < 20 ms", "finish_latency", r"finish .*p99.*", 20.0, False, at_most=True),
    Target(
        "finish_batch of 1000 small entries < 0.3 s (SQLite)",
        "finish_batch",
        r"finish_batch 1000 x .+",
        300.0,
        False,
        at_most=True,
    ),
    Target(
        "finish_batch of 1000 small entries well under 1 s (PostgreSQL)",
        "finish_batch_pg",
        r"postgres finish_batch(_v2)? 1000 x .+",
        1000.0,
        False,
        at_most=True,
    ),
    Target("small files >= 2000 files/s", "small_files", r"files end to end, c\d+", 2000.0, False),
    Target("download >= 0.8x nginx", "download", r"download .+ \(files/download\)", 0.8, True),
    Target(
        "get_metadata p99 < 5 ms at 500 req/s with 1M files",
        "metadata_load",
        r"get_metadata p99 @500/s",
        5.0,
        False,
        at_most=True,
    ),
    Target(
        "peak RSS < 200 MB for a 10 GiB upload",
        "session_1gib",
        r"peak RSS during .+",
        200.0,
        False,
        at_most=True,
        scale=1 / MIB_PER_MB,
        caveat="measured on the benchmark's upload size, not 10 GiB",
    ),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    target: Target
    status: str  # MET, NOT_MET or NOT_MEASURED
    evidence: list[str]  # one "figure: value" per matched figure
    caveats: list[str]


def figures_of(results: dict[str, Any], benchmark: str) -> list[dict[str, Any]]:
    """The figure dicts of one benchmark in a results JSON (empty if it did not run)."""
    for bench in results.get("benchmarks", []):
        if bench.get("benchmark") == benchmark:
            return list(bench.get("figures", []))
    return []


def find(results: dict[str, Any], benchmark: str, pattern: str) -> list[dict[str, Any]]:
    """Figures of ``benchmark`` whose whole name matches ``pattern``."""
    regex = re.compile(pattern)
    return [fig for fig in figures_of(results, benchmark) if regex.fullmatch(str(fig.get("name", "")))]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _files_seeded(results: dict[str, Any]) -> int | None:
    for fig in find(results, "metadata_load", r"seed \d+ files.*"):
        return int(str(fig["name"]).split()[1])
    return None


def evaluate(target: Target, results: dict[str, Any]) -> Verdict:
    evidence: list[str] = []
    oks: list[bool] = []
    for fig in find(results, target.benchmark, target.pattern):
        key = "ratio_median" if target.use_ratio else "median"
        value = _number(fig.get(key))
        if value is None:
            continue
        compared = value * target.scale
        oks.append(compared <= target.bound if target.at_most else compared >= target.bound)
        if target.use_ratio:
            evidence.append(f"{fig['name']}: x{value:.3g} vs {fig.get('baseline')}")
        else:
            evidence.append(f"{fig['name']}: {value:.3g} {fig.get('unit', '')}".rstrip())
    caveats = [target.caveat] if target.caveat and oks else []
    if target.benchmark == "metadata_load" and oks:
        files = _files_seeded(results)
        if files is None or files < 1_000_000:
            count = "an unknown number of" if files is None else str(files)
            caveats.append(f"the run had {count} files, not 1M")
        for lag in find(results, "metadata_load", r"client lag p99, get_metadata @500/s"):
            lag_ms = _number(lag.get("median"))
            if lag_ms is not None and lag_ms > BUSY_LAG_MS:
                caveats.append(f"client lag p99 {lag_ms:.1f} ms: other load on the machine raised latencies")
    status = NOT_MEASURED if not oks else (MET if all(oks) else NOT_MET)
    return Verdict(target, status, evidence, caveats)


def evaluate_all(results: dict[str, Any]) -> list[Verdict]:
    return [evaluate(target, results) for target in TARGETS]
