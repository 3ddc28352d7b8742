"""The backends the reliability tier runs against (see conftest.py).

- embedded: SQLite + the local disk under the data dir (no flags).
- postgres-s3: a fresh PostgreSQL database (tests/pg.py) and a fresh bucket on moto's standalone S3
  server on 127.0.0.1 (as tests/stores starts it), both per test module; blob usage is what the
  bucket holds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str  # http://127.0.0.1:PORT of moto's server
    bucket: str

    def client(self) -> Any:
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test")

    def blob_url(self, endpoint: str | None = None) -> str:
        """The --blob-url of this bucket, reached at `endpoint` (a proxy in front of moto) if given."""
        return f"s3://{self.bucket}/lb?endpoint_url={endpoint or self.endpoint}&region=us-east-1"

    def objects(self, under: str = "") -> list[tuple[str, int]]:
        """(key below the blob prefix, size) of every object in the bucket under `under`."""
        client, found, token = self.client(), [], None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": "lb/" + under}
            if token:
                kwargs["ContinuationToken"] = token
            page = client.list_objects_v2(**kwargs)
            found += [(o["Key"][3:], int(o["Size"])) for o in page.get("Contents", ())]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found


@dataclass(frozen=True)
class Backend:
    name: str
    serve_args: tuple[str, ...]
    blob_usage: Callable[[Path], tuple[int, int]]  # data dir -> (files, bytes) its blob store holds
    block_names: Callable[[Path], set[str]]  # data dir -> hex digests of the blocks its blob store holds
    # Blocks are files under <data dir>/blobs: a test can age them by setting their mtime back.
    local_blocks: bool = True
    database_url: str | None = None
    s3: S3Bucket | None = None


def local_blob_usage(data_dir: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(data_dir / "blobs"):
        for n in names:
            files += 1
            size += os.path.getsize(os.path.join(root, n))
    return files, size


def local_block_names(data_dir: Path) -> set[str]:
    return {n for _, _, names in os.walk(data_dir / "blobs" / "blocks") for n in names}


@contextlib.contextmanager
def embedded() -> Iterator[Backend]:
    yield Backend("embedded", (), local_blob_usage, local_block_names)


@contextlib.contextmanager
def postgres_s3() -> Iterator[Backend]:
    import pg
    from stores._blobstores import create_bucket, start_moto

    with pg.database() as url, contextlib.ExitStack() as stack:
        moto, endpoint = start_moto()
        stack.callback(moto.stop)
        s3 = S3Bucket(endpoint, f"reliability-{secrets.token_hex(4)}")
        create_bucket(endpoint, s3.bucket)

        def usage(_: Path) -> tuple[int, int]:
            objects = s3.objects()
            return len(objects), sum(size for _, size in objects)

        def blocks(_: Path) -> set[str]:
            return {key.rsplit("/", 1)[1] for key, _ in s3.objects("blocks/")}

        yield Backend("postgres-s3", ("--database-url", url, "--blob-url", s3.blob_url()), usage, blocks,
                      local_blocks=False, database_url=url, s3=s3)


BACKENDS: dict[str, Callable[[], contextlib.AbstractContextManager[Backend]]] = {
    "embedded": embedded,
    "postgres-s3": postgres_s3,
}
