"""The id of the request being served, for log lines and the x-dropbox-request-id header."""

from __future__ import annotations

import contextvars

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("localbox_request_id", default=None)
REQUEST_ID_KEY = "localbox.request_id"  # the same id in the ASGI scope (the endpoint answers it)


def current_request_id() -> str | None:
    return REQUEST_ID.get()
