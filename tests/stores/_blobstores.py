"""Shared by the blob store tests: backends, moto's S3 server, and a session driver."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import logging
import os
import random
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from localbox.stores.base import BlobStore, StagedAppend
from localbox.stores.localdisk import LocalDiskBlobStore
from localbox.stores.memory import MemoryBlobStore

Store = Any  # LocalDiskBlobStore | MemoryBlobStore | S3BlobStore
T = TypeVar("T")


@dataclass
class MotoEndpoint:
    server: Any
    url: str
    bucket: str

    def blob_url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}?endpoint_url={self.url}&region=us-east-1"


def start_moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    # Credentials come from the standard AWS chain, as in production (servers started by the tests
    # inherit them); moto accepts any.
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(key, value)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def create_bucket(endpoint_url: str, bucket: str) -> None:
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=bucket)


def make_s3(endpoint: MotoEndpoint, prefix: str, **kwargs: Any) -> Any:
    from localbox.stores.s3 import S3BlobStore

    return S3BlobStore.from_url(endpoint.blob_url(prefix), **kwargs)



MIB4 = 4 * 1024 * 1024
NO_LIMIT = 1 << 40

DATA = random.Random(11).randbytes(2 * MIB4 + 100_000)


def run(coro: Awaitable[T]) -> T:
    async def wrap() -> T:
        return await coro

    return asyncio.run(wrap())


async def stream(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def read_all(store: BlobStore, blocks: Any, size: int, start: int, end: int) -> bytes:
    async def go() -> bytes:
        return b"".join([c async for c in store.open(blocks, size, start, end)])

    return run(go())


def stored_blocks(store: Store) -> set[bytes]:
    """Digests of every block the backend holds."""
    if isinstance(store, MemoryBlobStore):
        return set(store.blocks)
    if isinstance(store, LocalDiskBlobStore):
        return {bytes.fromhex(p.name) for p in store.blocks_dir.rglob("*") if p.is_file()}
    return {bytes.fromhex(o.key.rsplit("/", 1)[1]) for o in store.client.list(store.prefix + "blocks/")}


def has_staging(store: Store, sid: str) -> bool:
    if isinstance(store, MemoryBlobStore):
        return sid in store._tails
    if isinstance(store, LocalDiskBlobStore):
        return (store.staging_dir / sid).exists()
    return any(True for _ in store.client.list(f"{store.prefix}staging/{sid}/"))


async def seal(store: BlobStore, staging_id: str, index: int, tail: int) -> bytes | None:
    """Seal a session's staged tail the way the service does: an empty append with seal=True."""
    staged = await store.append_staged(staging_id, index, tail, stream([]), NO_LIMIT, seal=True)
    return staged.new_blocks[-1] if staged.new_blocks else None


class Session:
    """Drives append_staged the way the upload-session service does, tracking acknowledged state;
    `store` may be swapped for a new object on the same data between calls (a restart)."""

    def __init__(self, store: BlobStore, sid: str = "sess") -> None:
        self.store, self.sid = store, sid
        self.blocks: list[bytes] = []
        self.tail = 0

    async def append_async(
        self, parts: list[bytes], *, seal: bool = False, ack: bool = True, limit: int = NO_LIMIT,
    ) -> StagedAppend:
        res = await self.store.append_staged(self.sid, len(self.blocks), self.tail, stream(parts), limit, seal=seal)
        if ack:
            before = len(self.blocks)
            self.blocks += res.new_blocks
            self.tail = res.tail_length
            if len(self.blocks) > before:  # what the service does once the new state is committed
                await self.store.discard_staging(self.sid, below_index=len(self.blocks))
        return res

    def append(self, parts: list[bytes], **kw: Any) -> StagedAppend:
        return run(self.append_async(parts, **kw))




class S3ErrorEndpoint(socketserver.ThreadingTCPServer):
    """A stand-in S3 endpoint on 127.0.0.1 that answers every request with one S3 error, or first hangs
    for `hang` seconds and then closes without an answer.  `hits` counts the requests it got."""

    daemon_threads = True

    def __init__(self, status: int, code: str, message: str, hang: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _ErrorHandler)
        self.body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        self.status = status
        self.hang = hang
        self.hits = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ErrorHandler(http.server.BaseHTTPRequestHandler):
    server: S3ErrorEndpoint

    def _answer(self) -> None:
        self.server.hits += 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.server.hang:
            time.sleep(self.server.hang)
            return
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def s3_error_endpoint(status: int, code: str, message: str, hang: float = 0.0) -> Iterator[S3ErrorEndpoint]:
    server = S3ErrorEndpoint(status, code, message, hang)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
