"""Composition root: builds the stores, the services and the ASGI app from Settings."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from localbox import __version__, backends
from localbox.api.admin import AdminApi
from localbox.api.context import Services
from localbox.api.endpoint import Endpoint
from localbox.api.faults import CallFaults
from localbox.api.handlers import files as files_handlers
from localbox.api.handlers import listing as listing_handlers
from localbox.api.handlers import search as search_handlers
from localbox.api.handlers import team as team_handlers
from localbox.api.handlers import tree as tree_handlers
from localbox.api.handlers import upload_sessions as session_handlers
from localbox.api.handlers import users as users_handlers
from localbox.config import Settings
from localbox.console.web import Console
from localbox.faults.batches import BatchFaultHooks
from localbox.faults.calls import RequestLog
from localbox.faults.middleware import CallMiddleware
from localbox.faults.model import FaultBook
from localbox.observability.metrics import Metrics, ObservabilityMiddleware
from localbox.observability.routes import ObservabilityRoutes
from localbox.services import inspection
from localbox.services.accounts import AccountService
from localbox.services.admin import AdminService
from localbox.services.changes import ChangeFeed
from localbox.services.cursors import CursorKey
from localbox.services.files import FileService
from localbox.services.gc import GarbageCollector
from localbox.services.job_leases import JobClaimer
from localbox.services.jobs import BatchFaults, BatchService
from localbox.services.rate_limits import RateLimiter, SharedRateLimiter
from localbox.services.search import SearchService
from localbox.services.seed import Seed, Seeded, SeedService, load_seed
from localbox.services.session_leases import SessionLeases
from localbox.services.teams import TeamService
from localbox.services.tree import TreeService
from localbox.services.upload_sessions import SessionLimits, UploadSessionService
from localbox.services.write_locks import LocalNamespaceLocks
from localbox.stores.base import MetadataStore
from localbox.stores.memory import MemoryBlobStore
from localbox.stores.sqlite import SqliteMetadataStore

log = logging.getLogger("localbox")
DRAIN = "localbox.drain"  # lifespan state: an async callable that ends long waits


@dataclass(frozen=True, slots=True)
class Backends:
    metadata: MetadataStore
    blobs: Any  # a BlobStore: LocalDiskBlobStore, MemoryBlobStore or S3BlobStore
    urls: tuple[str, str] = ("", "")  # (database, blobs), as shown to people

    def describe(self) -> str:
        if isinstance(self.blobs, MemoryBlobStore):
            return "metadata=sqlite (in memory) blobs=memory: nothing is written to disk"
        return f"metadata={self.urls[0]} blobs={self.urls[1]}"


def open_backends(settings: Settings) -> Backends:
    """The stores `settings` name by URL (localbox/backends.py); raises BackendError, SchemaOutdated."""
    if settings.memory:
        return Backends(SqliteMetadataStore(settings.database_path, memory=True), MemoryBlobStore())
    db, blobs = backends.database_url(settings), backends.blob_url(settings)
    metadata = backends.open_metadata(db)
    blob_store = backends.open_blobs(blobs, grace=settings.gc_grace)
    return Backends(metadata, blob_store, (backends.describe(db), backends.describe(blobs)))


def _claimer(backends: Backends) -> JobClaimer:
    """Jobs are claimed with leases; a SQLite file has one server, which may take every lease back
    at its start (several nodes share only a PostgreSQL database, #5)."""
    return JobClaimer(backends.metadata, exclusive=isinstance(backends.metadata, SqliteMetadataStore))


def build_gc(settings: Settings, backends: Backends) -> GarbageCollector:
    return GarbageCollector(backends.metadata, backends.blobs, grace=settings.gc_grace,
                            revision_retention=settings.revision_retention)


def build_services(settings: Settings, backends: Backends, batch_faults: BatchFaults | None = None) -> Services:
    limits = SessionLimits(ttl_seconds=settings.session_ttl, max_session_size=settings.max_session_size,
                           max_open_sessions=settings.max_open_sessions)
    # One per process: commits per namespace (#4); a PostgreSQL store adds the locks its nodes share.
    write_locks = LocalNamespaceLocks(settings.write_wait,
                                      shared_store=not isinstance(backends.metadata, SqliteMetadataStore))
    cursor_key = CursorKey(backends.metadata)  # the database's cursor signing key, read once (#7)
    return Services(
        accounts=AccountService(backends.metadata),
        sessions=UploadSessionService(backends.metadata, backends.blobs, limits, write_locks=write_locks),
        batches=BatchService(backends.metadata, backends.blobs, settings.job_retention, batch_faults,
                             write_locks=write_locks, claimer=_claimer(backends)),
        files=FileService(backends.metadata, backends.blobs, cursor_key),
        tree=TreeService(backends.metadata, write_locks),
        changes=ChangeFeed(backends.metadata, cursor_key=cursor_key),
        search=SearchService(backends.metadata, cursor_key),
        teams=TeamService(backends.metadata),
        # A SQLite file has one server: its buckets stay in memory; PostgreSQL nodes share theirs.
        limiter=(RateLimiter() if isinstance(backends.metadata, SqliteMetadataStore)
                 else SharedRateLimiter(backends.metadata)),
        quota=settings.quota,
    )


class _App(Starlette):
    """Starlette with CallMiddleware outside even its error handling: only there is `send` the
    server's own, which a dropped-response fault needs (faults/middleware.py)."""

    request_log: RequestLog

    def build_middleware_stack(self) -> Any:
        return CallMiddleware(super().build_middleware_stack(), self.request_log)


def create_app(settings: Settings, backends: Backends | None = None, seed: Seed | None = None) -> Starlette:
    """The ASGI app.  `seed` (or the file settings.seed names) is applied at start and after a reset;
    app.state carries the admin token, the fault book and the request log (for in-process use)."""
    backends = backends or open_backends(settings)
    if seed is None and settings.seed is not None:
        seed = load_seed(settings.seed)
    book = FaultBook()
    request_log = RequestLog(settings.request_log_size)
    services = build_services(settings, backends, BatchFaultHooks(book))
    services.batches.max_pending_jobs = settings.max_pending_jobs
    if not isinstance(backends.metadata, SqliteMetadataStore):  # several nodes may share it (#5)
        services.sessions.leases = SessionLeases(backends.metadata)
    seeder = SeedService(services.accounts, services.sessions, services.tree, settings.quota, services.teams)
    seeded = Seeded()

    async def apply_seed() -> None:
        if seed is not None:
            result = await seeder.apply(seed)
            for email, tokens in result.tokens.items():
                seeded.tokens.setdefault(email, []).extend(tokens)
            for team, tokens in result.team_tokens.items():
                seeded.team_tokens.setdefault(team, []).extend(tokens)

    wipe = backends.blobs.clear if isinstance(backends.blobs, MemoryBlobStore) else None
    admin = AdminService(backends.metadata, backends.blobs, wipe, apply_seed)
    admin_token = settings.admin_token or secrets.token_urlsafe(24)
    admin_api = AdminApi(admin_token, book, request_log, admin, seeder)
    metrics = Metrics()  # /metrics, /healthz, /readyz and request ids (#9)
    views = inspection.InspectService(backends.metadata, backends.blobs)
    observability = ObservabilityRoutes(metrics, views)
    console = Console(admin_token, views, book, request_log, secure_cookie=settings.https)  # /console (#9)
    endpoint = Endpoint(services, {**session_handlers.HANDLERS, **files_handlers.HANDLERS,
                                   **users_handlers.HANDLERS, **tree_handlers.HANDLERS,
                                   **listing_handlers.HANDLERS, **search_handlers.HANDLERS,
                                   **team_handlers.HANDLERS}, CallFaults(book, admin))

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
        await apply_seed()
        for email, tokens in seeded.tokens.items():
            for token in tokens:
                log.warning("seed: generated token for %s: %s", email, token)
        for team, tokens in seeded.team_tokens.items():
            for token in tokens:
                log.warning("seed: generated team token for %s: %s", team, token)
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

    app = _App(
        routes=[Route("/2/{route:path}", api, methods=["POST", "GET", "OPTIONS"]), Route("/", home),
                *admin_api.routes(), *observability.routes(), *console.routes()],
        middleware=[Middleware(ObservabilityMiddleware, metrics=metrics, routes=set(endpoint.handlers))],
        lifespan=lifespan,
    )
    app.request_log = request_log
    app.state.admin_token = admin_token
    app.state.faults = book
    app.state.seeded = seeded
    app.state.metrics = metrics
    return app
