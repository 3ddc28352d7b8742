"""The narrow S3 interface the S3 blob store needs (implemented on botocore in s3botocore.py).

Five calls (put, get a byte range, head, delete, list a prefix), two server-side copies (`touch`, a
copy onto itself, which renews an object's modification time without moving its bytes, and `copy` to
another key: the collector's trash and restore, see s3.py), and `check` (a LIST of at most one key, for
start-up and readiness); nothing bucket-wide, no multipart, no versioning, no conditional headers.  That
is what every S3-compatible store (AWS, MinIO, Ceph RGW, Garage, SeaweedFS, moto) implements alike, so
none of them needs code of its own.

Calls are blocking (the store runs them on its own thread pool).  An implementation raises
StoreUnavailable for transient failures after its own bounded retries, and reports a missing object
as None/False rather than an error.  This module imports no S3 library.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # the object store's LastModified, as a time.time() value


class S3Client(Protocol):
    """What S3BlobStore asks of an object store.  Keys are full object keys (prefix included)."""

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None: ...

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes | None:
        """The bytes [start, end) of the object (to its end when `end` is None); None if it is missing."""
        ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def touch(self, key: str) -> bool:
        """Renew the object's modification time without transferring its bytes; False if it is missing."""
        ...

    def copy(self, src: str, dst: str) -> bool:
        """Server-side copy of `src` to `dst` (replacing it); False if `src` is missing."""
        ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""
        ...

    def check(self, prefix: str) -> None:
        """One read-only request (a LIST of at most one key under `prefix`) proving that the endpoint
        answers, the bucket exists and the credentials may list it; else StoreUnavailable with a
        one-line reason."""
        ...


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the blobs live, from `s3://BUCKET/PREFIX?endpoint_url=...&region=...`."""

    bucket: str
    prefix: str  # "" or ending with "/"
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    @staticmethod
    def parse(url: str) -> S3Location:
        """Parse an s3:// blob URL.  Credentials normally come from the standard AWS chain (environment,
        ~/.aws, instance or container roles); `access_key`/`secret_key` query parameters are accepted
        for S3-compatibles run beside localbox, but put secrets in a URL only where the URL itself is
        kept secret (it shows in `ps` when given as a flag: prefer LOCALBOX_BLOB_URL or AWS_* variables)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://BUCKET[/PREFIX] URL: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"endpoint_url", "region", "access_key", "secret_key"}
        if unknown:
            raise ValueError(f"unknown s3 URL parameter(s): {', '.join(sorted(unknown))}")
        if ("access_key" in query) != ("secret_key" in query):
            raise ValueError("access_key and secret_key go together")
        prefix = parts.path.strip("/")
        return S3Location(
            bucket=parts.netloc, prefix=prefix + "/" if prefix else "",
            endpoint_url=query.get("endpoint_url") or None, region=query.get("region") or None,
            access_key=query.get("access_key"), secret_key=query.get("secret_key"),
        )

    def display(self) -> str:
        """The URL without credentials, for logs and the startup banner."""
        shown = f"s3://{self.bucket}/{self.prefix}"
        extra = [f"{k}={v}" for k, v in (("endpoint_url", self.endpoint_url), ("region", self.region)) if v]
        return shown + ("?" + "&".join(extra) if extra else "")
