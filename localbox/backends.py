"""Backends chosen by URL (#5): `--database-url` (sqlite:///PATH, postgresql://...) and `--blob-url`
(file:///PATH, s3://BUCKET/PREFIX?endpoint_url=...&region=...), defaulting to the embedded pair under
`--data-dir`.  Each backend's client library is imported only when its URL is used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localbox.config import Settings
from localbox.stores.base import MetadataStore


class BackendError(Exception):
    """A URL that names no usable backend (the message says why and what to do)."""


def database_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.database_path}"


def blob_url(settings: Settings) -> str:
    return settings.blob_url or f"file://{settings.blob_root.absolute()}"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def sqlite_path(url: str) -> Path:
    """sqlite:///relative/file or sqlite:////absolute/file (SQLAlchemy's spelling)."""
    if not url.startswith("sqlite:///"):
        raise BackendError(f"not a sqlite:///PATH URL: {url!r}")
    return Path(url[len("sqlite:///"):]).expanduser()


def file_path(url: str) -> Path:
    if not url.startswith("file://") or len(url) == len("file://"):
        raise BackendError(f"not a file:///PATH URL: {url!r}")
    return Path(url[len("file://"):]).expanduser()


def open_metadata(url: str, *, memory: bool = False) -> MetadataStore:
    """The metadata store at `url`.  SQLite files migrate themselves; PostgreSQL must be at HEAD
    (`localbox migrate`), else SchemaOutdated."""
    if url.startswith("sqlite:"):
        from localbox.stores.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(sqlite_path(url), memory=memory)
    if is_postgres(url):
        store_cls = _postgres()
        return store_cls(url.replace("postgresql+psycopg://", "postgresql://"))  # type: ignore[no-any-return]
    raise BackendError(f"--database-url: unsupported scheme in {url!r} (use sqlite:///PATH or postgresql://...)")


def _postgres() -> Any:
    try:
        from localbox.stores.postgres import PostgresMetadataStore
    except ImportError as e:
        raise BackendError(f'PostgreSQL needs psycopg: pip install "localbox[postgres]" ({e})') from None
    return PostgresMetadataStore


def open_blobs(url: str, *, grace: float) -> Any:
    """The blob store at `url` (a BlobStore)."""
    if url.startswith("file:"):
        from localbox.stores.localdisk import LocalDiskBlobStore

        return LocalDiskBlobStore(file_path(url), grace=grace)
    if url.startswith("s3://"):
        try:
            from localbox.stores.s3 import S3BlobStore
        except ImportError as e:
            raise BackendError(f'S3 blob storage needs its client: pip install "localbox[s3]" ({e})') from None
        try:
            return S3BlobStore.from_url(url, grace=grace)
        except ValueError as e:
            raise BackendError(f"--blob-url: {e}") from None
    raise BackendError(f"--blob-url: unsupported scheme in {url!r} (use file:///PATH or s3://BUCKET/PREFIX)")


def describe(url: str) -> str:
    """The URL as shown in logs: no password, no S3 secrets."""
    if is_postgres(url):
        from localbox.stores.schema_head import redact

        return redact(url)
    if url.startswith("s3://"):
        return url.split("?", 1)[0]
    return url


def migrate(url: str) -> tuple[str | None, str]:
    """Bring the database at `url` to HEAD; returns (revision before, revision after)."""
    from localbox.stores import migrate as migrations

    if url.startswith("sqlite:"):
        import sqlite3

        path = sqlite_path(url)
        before: str | None = None
        if path.exists():
            with sqlite3.connect(path) as db:
                before = migrations.sqlite_revision(db)
        store = open_metadata(url)  # a SQLite store migrates its file as it opens it
        store.run_sync(lambda tx: None)
        import asyncio

        asyncio.run(store.close())
        return before, migrations.HEAD
    if is_postgres(url):
        store_cls = _postgres()
        probe = store_cls(url, check_schema=False)
        try:
            before = probe.schema_revision()
        finally:
            probe._shutdown()
        migrations.upgrade(url)
        return before, migrations.HEAD
    raise BackendError(f"--database-url: unsupported scheme in {url!r}")
