"""Blob store backends for the behavioural suite: local disk, memory, and S3 on a real HTTP endpoint.

The S3 endpoint is moto's standalone server (`moto[server]`), started once per test session on a free
127.0.0.1 port with a fresh bucket; every test gets its own key prefix, so tests never see each
other's objects.  The store reaches it through botocore over real HTTP, exactly as it would reach
MinIO or AWS.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _blobstores import MotoEndpoint, Store, create_bucket, make_s3, start_moto

from localbox.stores.localdisk import LocalDiskBlobStore
from localbox.stores.memory import MemoryBlobStore


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoEndpoint]:
    server, url = start_moto()
    bucket = "localbox-test-" + secrets.token_hex(4)
    create_bucket(url, bucket)
    try:
        yield MotoEndpoint(server, url, bucket)
    finally:
        server.stop()


BACKENDS = ["localdisk", "memory", "s3"]


@pytest.fixture(params=BACKENDS)
def blob_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def open_blob_store(blob_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    """Opens the backend's store; every call opens a new store object on the same data (a restart),
    except for memory, whose data lives in its one object."""
    opened: list[Any] = []
    memory = MemoryBlobStore()
    prefix = f"t-{secrets.token_hex(6)}/"

    def open_() -> Store:
        if blob_backend == "localdisk":
            return LocalDiskBlobStore(tmp_path / "blobs")
        if blob_backend == "memory":
            return memory
        store = make_s3(request.getfixturevalue("moto_s3"), prefix)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture()
def blob_store(open_blob_store: Callable[[], Store]) -> Store:
    return open_blob_store()
