"""GET /metrics (Prometheus text format), /healthz (the process answers) and /readyz (the metadata and
blob stores answer; 503 otherwise).  No token: they reveal no account, path or secret, and probes and
scrapers seldom carry one."""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localbox.observability.metrics import Metrics
from localbox.services.inspection import InspectService, NotInspectable

log = logging.getLogger("localbox.observability")


class ObservabilityRoutes:
    def __init__(self, metrics: Metrics, inspect: InspectService) -> None:
        self.metrics = metrics
        self.inspect = inspect

    def routes(self) -> list[Route]:
        return [Route("/metrics", self.scrape, methods=["GET"]), Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"])]

    async def scrape(self, request: Request) -> Response:
        try:
            self.metrics.observe_load(*await self.inspect.load())
            self.metrics.observe_finished_jobs(await self.inspect.jobs_completed_after(self.metrics.jobs_seen_until))
        except NotInspectable:
            pass  # the stored-state gauges keep their last values
        except Exception:
            log.warning("metrics: could not read stored state", exc_info=True)
            self.metrics.scrape_errors.inc()
        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type.split(";")[0], headers={"Content-Type": content_type})

    async def healthz(self, request: Request) -> Response:
        return Response(json.dumps({"status": "ok"}), media_type="application/json")

    async def readyz(self, request: Request) -> Response:
        checks = await self.inspect.probe()
        ready = all(v == "ok" for v in checks.values())
        if not ready:
            log.warning("not ready: %s", checks)
        return Response(json.dumps({"status": "ready" if ready else "not ready", **checks}),
                        status_code=200 if ready else 503, media_type="application/json")
