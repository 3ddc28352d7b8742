"""The backends the reliability tier runs against (see conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Backend:
    name: str
    serve_args: tuple[str, ...]
    blob_usage: Callable[[Path], tuple[int, int]]  # data dir -> (files, bytes) its blob store holds


def local_blob_usage(data_dir: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(data_dir / "blobs"):
        for n in names:
            files += 1
            size += os.path.getsize(os.path.join(root, n))
    return files, size


BACKENDS = {"embedded": Backend("embedded", (), local_blob_usage)}
