"""Observability of a running server (#9): Prometheus metrics at /metrics, liveness and readiness at
/healthz and /readyz, a request id on every log line (text or JSON lines).  Part of the server: it
never imports the client, and the core (services, stores) never imports it."""

from localbox.observability.context import REQUEST_ID, REQUEST_ID_KEY, current_request_id

__all__ = ["REQUEST_ID", "REQUEST_ID_KEY", "current_request_id"]
