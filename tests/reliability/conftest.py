"""Reliability tier (#7): isolation, garbage collection, disk full, hostile input, crashes, load.

Every test runs against each backend in BACKENDS through the `backend` fixture: a backend is the set
of `localbox serve` arguments that select it plus a way to measure what its blob store holds.  Only
the embedded backend (SQLite + local disk) exists today; PostgreSQL + S3 (#5) add an entry here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import LocalServer, running_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # _apiwire's raw-HTTP helpers
sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability_backends import BACKENDS, Backend


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
