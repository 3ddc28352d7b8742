"""Composition root: builds the stores, the services and the ASGI app from Settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from localbox import __version__
from localbox.api.context import Services
from localbox.api.endpoint import Endpoint
from localbox.api.handlers import files as files_handlers
from localbox.api.handlers import listing as listing_handlers
from localbox.api.handlers import search as search_handlers
from localbox.api.handlers import tree as tree_handlers
from localbox.api.handlers import upload_sessions as session_handlers
from localbox.api.handlers import users as users_handlers
from localbox.config import Settings
from localbox.services.accounts import AccountService
from localbox.services.changes import ChangeFeed
from localbox.services.files import FileService
from localbox.services.gc import GarbageCollector
from localbox.services.jobs import BatchService
from localbox.services.search import SearchService
from localbox.services.tree import TreeService
from localbox.services.upload_sessions import SessionLimits, UploadSessionService
from localbox.stores.localdisk import LocalDiskBlobStore
from localbox.stores.sqlite import SqliteMetadataStore

log = logging.getLogger("localbox")
DRAIN = "localbox.drain"  # lifespan state: an async callable that ends long waits


@dataclass(frozen=True, slots=True)
class Backends:
    metadata: SqliteMetadataStore
    blobs: LocalDiskBlobStore

    def describe(self) -> str:
        return f"metadata=sqlite:///{self.metadata.path} blobs=file://{self.blobs.root}"


def open_backends(settings: Settings) -> Backends:
    return Backends(SqliteMetadataStore(settings.database_path),
                    LocalDiskBlobStore(settings.blob_root, grace=settings.gc_grace))


def build_gc(settings: Settings, backends: Backends) -> GarbageCollector:
    return GarbageCollector(backends.metadata, backends.blobs, grace=settings.gc_grace,
                            revision_retention=settings.revision_retention)


def build_services(settings: Settings, backends: Backends) -> Services:
    limits = SessionLimits(ttl_seconds=settings.session_ttl, max_session_size=settings.max_session_size)
    return Services(
        accounts=AccountService(backends.metadata),
        sessions=UploadSessionService(backends.metadata, backends.blobs, limits),
        batches=BatchService(backends.metadata, backends.blobs, settings.job_retention),
        files=FileService(backends.metadata, backends.blobs),
        tree=TreeService(backends.metadata),
        changes=ChangeFeed(backends.metadata),
        search=SearchService(backends.metadata),
        quota=settings.quota,
    )


def create_app(settings: Settings, backends: Backends | None = None) -> Starlette:
    backends = backends or open_backends(settings)
    services = build_services(settings, backends)
    endpoint = Endpoint(services, {**session_handlers.HANDLERS, **files_handlers.HANDLERS,
                                   **users_handlers.HANDLERS, **tree_handlers.HANDLERS,
                                   **listing_handlers.HANDLERS, **search_handlers.HANDLERS})

    async def api(request: Request) -> Response:
        return await endpoint(request)

    async def home(request: Request) -> Response:
        return PlainTextResponse(f"localbox {__version__}: a Dropbox API v2 server. POST /2/<route>\n")

    async def housekeeping() -> None:
        """Expired upload sessions and finished jobs past retention are forgotten, every quarter of the
        shorter lifetime (at most a minute)."""
        interval = min(60.0, max(min(settings.session_ttl, settings.job_retention) / 4, 1.0))
        while True:
            await asyncio.sleep(interval)
            try:
                swept = await services.sessions.sweep_expired()
                purged = await services.batches.purge_expired()
                if swept or purged:
                    log.info("forgot %d expired upload sessions and %d old batch jobs", swept, purged)
            except Exception:  # keep going: the next round retries
                log.exception("housekeeping failed")

    collector = build_gc(settings, backends)

    async def collect_garbage() -> None:
        while True:
            await asyncio.sleep(settings.gc_interval)
            try:
                report = await collector.run_once()
                log.info("gc: %d old revisions forgotten; blobs: %s", report.revisions_expired, report.blob_stats)
            except Exception:  # keep going: the next round retries
                log.exception("garbage collection failed")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await services.batches.start()
        services.changes.start()
        janitor = asyncio.create_task(housekeeping())
        gc_task = asyncio.create_task(collect_garbage())
        try:
            # The server calls DRAIN when shutdown begins, before it waits for open requests: pending
            # longpolls (up to 8 minutes) then answer at once instead of holding the shutdown.
            yield {DRAIN: services.changes.stop}
        finally:
            janitor.cancel()
            gc_task.cancel()
            await asyncio.gather(janitor, gc_task, return_exceptions=True)
            await services.changes.stop()
            await services.batches.stop()
            await backends.metadata.close()

    return Starlette(
        routes=[Route("/2/{route:path}", api, methods=["POST", "GET"]), Route("/", home)],
        lifespan=lifespan,
    )
