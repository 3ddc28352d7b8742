"""Every HTTP response localbox sends from /2/ is built here, in Dropbox's exact wire form."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

JSON = "application/json"  # exact: the SDK compares the header string for equality
TEXT = "text/plain; charset=utf-8"


def json_ok(body: str) -> Response:
    return Response(body, status_code=200, media_type=JSON)


def route_error(summary: str, error: Any) -> Response:
    return Response(json.dumps({"error_summary": summary, "error": error}), status_code=409, media_type=JSON)


def bad_request(route: str | None, message: str) -> Response:
    text = f'Error in call to API function "{route}": {message}' if route else message
    return Response(text, status_code=400, media_type=TEXT)


def auth_error(tag: str, required_scope: str | None = None) -> Response:
    error: dict[str, Any] = {".tag": tag}
    if required_scope is not None:
        error["required_scope"] = required_scope
    return Response(json.dumps({"error_summary": f"{tag}/...", "error": error}), status_code=401, media_type=JSON)


def path_root_error(error: dict[str, Any]) -> Response:
    summary = f"{error['.tag']}/..."
    return Response(json.dumps({"error_summary": summary, "error": error}), status_code=422, media_type=JSON)


def unavailable(request_id: str) -> Response:
    return Response(f"Service temporarily unavailable (request {request_id}); retry later.",
                    status_code=503, media_type=TEXT, headers={"Retry-After": "1"})


def internal_error(request_id: str) -> Response:
    return Response(f"Internal server error (request {request_id}).", status_code=500, media_type=TEXT)
