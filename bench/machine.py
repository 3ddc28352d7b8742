"""What machine a run was on: cores, memory, CPU model, free disk (recorded in the results JSON)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine(workroot: Path | None = None) -> dict[str, Any]:
    """Cores, memory, CPU model and the free space where the benchmarks' data dirs go."""
    where = workroot or Path(tempfile.gettempdir())
    usage = shutil.disk_usage(where)
    return {
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "cpu_model": _cpu_model(),
        "disk_free_bytes": usage.free,
        "disk_total_bytes": usage.total,
        "disk_path": str(where),
    }
