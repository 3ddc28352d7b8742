"""Reliability tier (#7): isolation, garbage collection, disk full, store faults, hostile input, crashes, load.

Every test runs against each backend in BACKENDS through the `backend` fixture: a backend is the set
of `localbox serve` arguments that select it plus a way to measure what its blob store holds.  A
module may name the backends it is about in `RELIABILITY_BACKENDS` (default: all of them): the
HTTP-layer tiers (limits, hostile input, TLS) and the local disk's tier (disk full) run on the
embedded backend only, the object store's faults on PostgreSQL + S3 only.
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        names = getattr(metafunc.module, "RELIABILITY_BACKENDS", tuple(BACKENDS))
        metafunc.parametrize("backend", names, indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with BACKENDS[request.param]() as b:  # a fresh database and bucket per module where it has them
        yield b


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with running_server(tmp_path_factory.mktemp("srv") / "data", backend.serve_args) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: LocalServer) -> Iterator[object]:
    import httpx

    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as c:
        yield c
