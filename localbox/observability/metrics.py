"""Prometheus metrics (/metrics) and the ASGI middleware that measures every API call.

The middleware sits inside the fault layer (faults/middleware.py must stay outermost), gives each HTTP
request its id (REQUEST_ID, which the endpoint answers as x-dropbox-request-id), and counts /2/ calls
by route and status, their latency, the bytes they carried each way and their errors by Dropbox tag.
Route labels come only from the known route table ("unknown" otherwise): label sets stay bounded.

Gauges that describe stored state (open upload sessions, queued and running batch jobs) and the
latency of batch jobs (launch to commit) are read from the services when /metrics is scraped.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Collection
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

from localbox.observability.answers import AnswerTap, ASGIApp, Message, Receive, Scope, Send, error_tag
from localbox.observability.context import REQUEST_ID, REQUEST_ID_KEY

access_log = logging.getLogger("localbox.access")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 480)
_JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# Calls that commit files before they answer: their latency is also the commit latency.
COMMIT_ROUTES = frozenset({"files/upload", "files/upload_session/finish", "files/upload_session/finish_batch_v2"})


class Metrics:
    """The server's metrics, in a registry of its own (several apps may live in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        self.requests = Counter("localbox_requests", "API calls by route and HTTP status", ["route", "status"],
                                registry=r)
        self.latency = Histogram("localbox_request_duration_seconds", "API call latency (until the answer is "
                                 "sent) by route", ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.bytes_in = Counter("localbox_request_bytes", "Request body bytes received, by route", ["route"],
                                registry=r)
        self.bytes_out = Counter("localbox_response_bytes", "Response body bytes sent, by route", ["route"],
                                 registry=r)
        self.errors = Counter("localbox_errors", "API errors by route and Dropbox error tag", ["route", "error"],
                              registry=r)
        self.in_flight = Gauge("localbox_requests_in_flight", "API calls being served", registry=r)
        self.commit = Histogram("localbox_commit_duration_seconds", "Commit latency: synchronous commit calls "
                                "(by route) and batch jobs from launch to commit (by job kind)", ["kind"],
                                buckets=_JOB_BUCKETS, registry=r)
        self.sessions_open = Gauge("localbox_upload_sessions_open", "Upload sessions not yet committed",
                                   registry=r)
        self.jobs = Gauge("localbox_batch_jobs", "Batch jobs not finished: queued behind another job of "
                          "their account, or running", ["state"], registry=r)
        self.jobs_finished = Counter("localbox_batch_jobs_finished", "Batch jobs finished, by kind and state",
                                     ["kind", "state"], registry=r)
        self.scrape_errors = Counter("localbox_metrics_refresh_errors", "Scrapes whose stored-state gauges "
                                     "could not be refreshed", registry=r)
        self._jobs_seen_until = time.time()  # jobs finished before the server started are not counted

    def observe_call(self, route: str, status: int | None, seconds: float, bytes_in: int, bytes_out: int,
                     error: str | None) -> None:
        self.requests.labels(route, str(status) if status is not None else "none").inc()
        self.latency.labels(route).observe(seconds)
        if bytes_in:
            self.bytes_in.labels(route).inc(bytes_in)
        if bytes_out:
            self.bytes_out.labels(route).inc(bytes_out)
        if error is not None:
            self.errors.labels(route, error).inc()
        if route in COMMIT_ROUTES and status == 200:
            self.commit.labels(route).observe(seconds)

    def observe_load(self, sessions_open: int, queued: int, running: int) -> None:
        self.sessions_open.set(sessions_open)
        self.jobs.labels("queued").set(queued)
        self.jobs.labels("running").set(running)

    def observe_finished_jobs(self, rows: Collection[Any]) -> None:
        """JobRow-like objects (kind, state, created, completed) finished since the last call."""
        for row in rows:
            if row.completed is None or row.completed <= self._jobs_seen_until:
                continue
            self.jobs_finished.labels(row.kind, row.state).inc()
            if row.state == "complete":
                self.commit.labels(row.kind).observe(max(0.0, row.completed - row.created))
        self._jobs_seen_until = max([self._jobs_seen_until, *(r.completed or 0.0 for r in rows)])

    @property
    def jobs_seen_until(self) -> float:
        return self._jobs_seen_until

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(16)
        scope[REQUEST_ID_KEY] = request_id
        token = REQUEST_ID.set(request_id)
        try:
            path: str = scope.get("path", "")
            if path.startswith("/2/"):
                await self._measured(path[3:], scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)

    async def _measured(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        label = route if route in self.routes else "unknown"
        started = time.perf_counter()
        tap = AnswerTap()
        bytes_in = bytes_out = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal bytes_out
            tap.see(message)
            if message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        self.metrics.in_flight.inc()
        failed = False
        try:
            await self.app(scope, counting_receive, counting_send)
        except Exception:
            failed = True
            raise
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            status = tap.status or (500 if failed else None)
            error = tap.error if tap.status is not None else error_tag(status, b"")
            self.metrics.observe_call(label, status, seconds, bytes_in, bytes_out, error)
            access_log.debug("%s %s %.1fms in=%d out=%d%s", route, status, seconds * 1000, bytes_in, bytes_out,
                             f" error={error}" if error else "")
