"""Every HTTP response localbox sends from /2/ is built here, in Dropbox's exact wire form."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

JSON = "application/json"  # exact: the SDK compares the header string for equality
TEXT = "text/plain; charset=utf-8"


# Browser JavaScript calls the API cross-site (Dropbox documents CORS pre-flight requests, and how to
# avoid them, in its HTTP docs): answers carry these so a page can read them, Dropbox-API-Result included.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Dropbox-API-Result, X-Dropbox-Request-Id, Content-Length, ETag, "
                                     "Content-Range, Accept-Ranges, Retry-After",
}
_PREFLIGHT_HEADERS = ("Authorization, Content-Type, Dropbox-API-Arg, Dropbox-API-Path-Root, "
                      "Dropbox-API-Select-User, Dropbox-API-Select-Admin, Range, If-None-Match")


def cors_preflight(route: str, reject: str | None, requested_headers: str | None) -> Response:
    """An OPTIONS pre-flight on /2/<route>: allowed, unless the URL says reject_cors_preflight=true,
    which Dropbox offers so that code meaning to send only "simple" requests notices when it doesn't."""
    if (reject or "").strip().lower() == "true":
        return bad_request(route, "CORS pre-flight request rejected: the URL has reject_cors_preflight=true.")
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": (requested_headers or "").strip() or _PREFLIGHT_HEADERS,
        "Access-Control-Max-Age": "600",
    }
    return Response(b"", status_code=200, headers=headers)


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


# Dropbox's data transport limit reference gives this body, word for word.
TRANSPORT_LIMIT_TEXT = (
    "Your team has used all of its data transport API calls for the month. Your monthly limit will reset on the 1st "
    "day of every month. If you'd like to move to a plan with unlimited API calls, please contact sales.")


def transport_limit_reached() -> Response:
    body = {"error_summary": "invalid_account_type/feature/.",
            "error": {".tag": "invalid_account_type", "invalid_account_type": {".tag": "feature"}},
            "user_message": {"locale": "en", "text": TRANSPORT_LIMIT_TEXT}}
    return Response(json.dumps(body), status_code=403, media_type=JSON)


def rate_limited(reason: str, retry_after: int, accept: str) -> Response:
    """429 with Retry-After.  JSON is auth.RateLimitError (the SDK decodes it strictly: no extra keys);
    plain text, which means too_many_requests, goes to clients that accept text but not JSON."""
    headers = {"Retry-After": str(retry_after)}
    wants = accept.lower()
    if reason == "too_many_requests" and "text/plain" in wants and "application/json" not in wants:
        return Response("Too many requests; retry later.", status_code=429, media_type=TEXT, headers=headers)
    body = {"error_summary": f"{reason}/", "error": {"reason": {".tag": reason}, "retry_after": retry_after}}
    return Response(json.dumps(body), status_code=429, media_type=JSON, headers=headers)


def server_error(status: int, request_id: str, retry_after: int | None = None) -> Response:
    """An injected 5xx: plain text, as Dropbox's own front ends answer."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(f"Error {status} (request {request_id}); retry later.", status_code=status, media_type=TEXT,
                    headers=headers)
