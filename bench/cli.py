"""``python -m bench``: argument parsing, running the selected benchmarks, the summary and the JSON file."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.benchmarks import BENCHMARKS
from bench.config import Config
from bench.machine import machine
from bench.procs import ServerError
from bench.report import main as write_report
from bench.stats import Recorder, figure_line, summary_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _concurrency(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 8 or 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("thread counts must be >= 1")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    listing = "\n".join(f"  {name:<15} {desc}" for name, (desc, _) in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks for localbox, each as a paired ratio to a baseline measured in the same run.",
        epilog=f"benchmarks (default: all, in this order):\n{listing}\n\nsee bench/README.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="BENCHMARK", help="benchmarks to run (default: all)")
    parser.add_argument(
        "--quick", action="store_true", help="256 MiB instead of 1 GiB, fewer files, 2 rounds"
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds per benchmark (default 3, quick 2; use 5+ to decide)"
    )
    parser.add_argument(
        "--concurrency", type=_concurrency, help="client threads for small files, e.g. 1,8 (default 8)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="parent of the temporary data dirs (default: system temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep data dirs and server logs")
    parser.add_argument(
        "--no-json", action="store_true", help=f"do not write {RESULTS_DIR.name}/<timestamp>.json"
    )
    parser.add_argument(
        "--report",
        nargs="?",
        const="",
        metavar="RESULTS_JSON",
        help="write docs/performance.md from RESULTS_JSON (default: the newest results) instead of running",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


def run_one(name: str, cfg: Config) -> Recorder:
    rec = Recorder(name)
    workdir = Path(tempfile.mkdtemp(prefix=f"localbox-bench-{name}-", dir=cfg.workroot))
    print(f"\n== {name}: {BENCHMARKS[name][0]}  ({cfg.rounds} rounds, {workdir})", flush=True)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    try:
        BENCHMARKS[name][1](cfg, rec, workdir)
    except ServerError as exc:
        rec.errors.append(str(exc))
    except Exception as exc:  # a failing benchmark must not stop the others; keep its traceback in the report
        rec.errors.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    finally:
        rec.seconds = time.perf_counter() - start
        # Other work on the 2 cores (tests, builds) distorts absolute figures; say so next to them.
        rec.note(f"1-min load average: {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end")
        if cfg.keep:
            print(f"   kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for figure in rec.figures.values():
        print("   " + figure_line(figure))
    for note in rec.notes:
        print(f"   note: {note}")
    for error in rec.errors:
        print("   ERROR: " + error.replace("\n", "\n          "))
    print(f"   ({rec.seconds:.1f} s)", flush=True)
    return rec


def environment(workroot: Path | None = None) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        "machine": machine(workroot),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        return write_report(args.report)
    cfg = Config.make(args.quick, args.rounds, args.concurrency, args.workdir, args.keep)
    names = args.names or list(BENCHMARKS)
    started = datetime.now()
    recorders = [run_one(name, cfg) for name in names]
    print("\n" + summary_table(recorders))
    if not args.no_json:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{started:%Y%m%d-%H%M%S}.json"
        report = {
            "started": started.isoformat(timespec="seconds"),
            "argv": sys.argv[1:] if argv is None else argv,
            "config": dataclasses.asdict(cfg),
            "environment": environment(cfg.workroot),
            "benchmarks": [rec.to_json() for rec in recorders],
        }
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nresults: {path}")
    return 1 if any(rec.errors for rec in recorders) else 0
