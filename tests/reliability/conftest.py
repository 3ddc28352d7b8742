"""Reliability tier (#7): isolation, garbage collection, disk full, hostile input, crashes, load.

Every test runs against each backend in BACKENDS through the `backend` fixture: a backend is the set
of `localbox serve` arguments that select it plus a way to measure what its blob store holds.  Only
the embedded backend (SQLite + local disk) exists today; PostgreSQL + S3 (#5) add an entry here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import LocalServer, running_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # _apiwire's raw-HTTP helpers


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


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with running_server(tmp_path_factory.mktemp("srv") / "data", backend.serve_args) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: LocalServer) -> Iterator[object]:
    import httpx

    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as c:
        yield c
