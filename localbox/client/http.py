"""The wire: RPC, upload and download calls over httpx, with Dropbox's retry rules.

Why httpx and not the official SDK: the SDK is synchronous (one blocking `requests` call per thread) and
retries on its own terms, hiding Retry-After, the 429 reason and the raw error tags from its caller.  An
uploader that keeps dozens of parts in flight, resumes sessions from `correct_offset` and reports every
failure by its Dropbox tag needs one event loop, a shared connection pool and the raw answers.

Retry policy (what Dropbox documents for its own SDKs):
  * 429 (too_many_requests, too_many_write_operations): wait Retry-After (header, or the JSON body's
    `retry_after`), then send the same request again; not counted against the error budget.
  * 5xx and transport failures (refused, reset, a connection closed before the answer): exponential
    backoff with jitter, up to `max_retries`.  A request whose answer was lost may have been applied:
    the callers make that safe (append: incorrect_offset gives the correct offset; a closed session;
    finish_batch: per-entry checks against the content hash).
  * 409 route errors and 4xx protocol errors are returned to the caller as ApiError at once.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

DROPBOX_API = "https://api.dropboxapi.com"
DROPBOX_CONTENT = "https://content.dropboxapi.com"
_DROPBOX_HOSTS = {"api.dropboxapi.com", "content.dropboxapi.com"}
MAX_RETRY_AFTER = 300.0
MAX_RATE_LIMITED = 100  # waits for 429s on one call before it gives up (the SDK waits forever)


class ApiError(Exception):
    """A call that failed for good: a route error (409) or another refusal, or retries exhausted."""

    def __init__(self, route: str, status: int | None, tag: str, body: Any = None) -> None:
        super().__init__(f"{route}: {tag}" + (f" (HTTP {status})" if status is not None else ""))
        self.route = route
        self.status = status
        self.tag = tag  # the Dropbox error's tag path, e.g. path/conflict/file, or http_400, connection_failed
        self.body = body

    def find(self, key: str) -> Any:
        """A field anywhere in the error body (e.g. correct_offset inside lookup_failed/incorrect_offset)."""
        return find_field(self.body, key)


def tag_path(value: Any) -> str:
    """`{".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}}` -> path/conflict/file."""
    parts: list[str] = []
    while isinstance(value, dict) and isinstance(value.get(".tag"), str):
        tag = value[".tag"]
        parts.append(tag)
        inner = value.get(tag)
        if not (isinstance(inner, dict) and ".tag" in inner):
            # A struct member flattened into the union (UploadWriteFailed: {"reason": {...}, ...}).
            inner = next((v for k, v in value.items() if k != ".tag" and isinstance(v, dict) and ".tag" in v), None)
        value = inner
    return "/".join(parts) or "unknown"


def find_field(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        for v in value.values():
            found = find_field(v, key)
            if found is not None:
                return found
    return None


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where RPC and content calls go.  Real Dropbox splits them across two hosts; localbox serves both."""

    api: str
    content: str

    @classmethod
    def from_url(cls, url: str) -> Endpoints:
        base = url.strip().rstrip("/").removesuffix("/2")
        if "://" not in base:
            base = "http://" + base
        if urlsplit(base).hostname in _DROPBOX_HOSTS:
            return cls(DROPBOX_API, DROPBOX_CONTENT)
        return cls(base, base)


@dataclass(slots=True)
class RetryStats:
    """How often calls were retried, by reason (the summary prints them)."""

    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str) -> None:
        self.reasons[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.reasons.values())


def header_json(arg: Any) -> str:
    """Dropbox-API-Arg must be ASCII: non-ASCII characters travel as JSON \\u escapes."""
    return json.dumps(arg, ensure_ascii=True, separators=(",", ":"))


def _retry_after(response: httpx.Response) -> float:
    header = response.headers.get("retry-after")
    if header is not None:
        try:
            return min(max(float(header), 0.0), MAX_RETRY_AFTER)
        except ValueError:
            pass
    try:
        value = find_field(response.json(), "retry_after")
    except ValueError:
        value = None
    return min(float(value), MAX_RETRY_AFTER) if isinstance(value, int | float) else 5.0


def _429_reason(response: httpx.Response) -> str:
    try:
        reason = find_field(response.json(), "reason")
    except ValueError:
        return "too_many_requests"  # Dropbox answers a plain-text 429 for the rate limit
    return tag_path(reason) if isinstance(reason, dict) else "too_many_requests"


def _error(route: str, response: httpx.Response) -> ApiError:
    if response.status_code == 409:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        return ApiError(route, 409, tag_path(error), body)
    text = response.text[:500]
    tag = f"http_{response.status_code}"
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            tag = tag_path(body["error"])  # 401 invalid_access_token, 403 ...
    except ValueError:
        body = text
    return ApiError(route, response.status_code, tag, body)


class DropboxHttp:
    def __init__(self, url: str, token: str, *, connections: int = 16, timeout: float = 300.0,
                 max_retries: int = 8, backoff: float = 0.5, verify: bool | str = True,
                 on_retry: Callable[[str, float], None] | None = None) -> None:
        self.endpoints = Endpoints.from_url(url)
        self.max_retries = max_retries
        self.backoff = backoff
        self.retries = RetryStats()
        self.on_retry = on_retry
        self.client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}", "User-Agent": "localbox-client"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(timeout, connect=30.0), verify=verify,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> DropboxHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- calls ------------------------------------------------------------------------------
    async def rpc(self, route: str, arg: Any = None) -> Any:
        content = b"null" if arg is None else json.dumps(arg).encode()
        response = await self._send(route, lambda: self.client.build_request(
            "POST", f"{self.endpoints.api}/2/{route}", content=content,
            headers={"Content-Type": "application/json"}))
        return response.json() if response.content else None

    async def upload(self, route: str, arg: Any, data: bytes) -> Any:
        response = await self._send(route, lambda: self.client.build_request(
            "POST", f"{self.endpoints.content}/2/{route}", content=data,
            headers={"Content-Type": "application/octet-stream", "Dropbox-API-Arg": header_json(arg)}))
        return response.json() if response.content else None

    @asynccontextmanager
    async def download(self, route: str, arg: Any) -> AsyncIterator[tuple[Any, httpx.Response]]:
        """(the Dropbox-API-Result, the streaming response); retried until the head arrives."""
        for attempt in range(self.max_retries + 1):
            request = self.client.build_request("POST", f"{self.endpoints.content}/2/{route}",
                                                headers={"Dropbox-API-Arg": header_json(arg)})
            try:
                response = await self.client.send(request, stream=True)
            except httpx.TransportError as e:
                await self._transport_backoff(route, attempt, e)
                continue
            try:
                if response.status_code == 200:
                    yield json.loads(response.headers.get("dropbox-api-result", "null")), response
                    return
                await response.aread()
                await self._answer_backoff(route, response, attempt)
            finally:
                await response.aclose()
        raise ApiError(route, None, "retries_exhausted")  # pragma: no cover - _answer_backoff raises first

    # -- retries ----------------------------------------------------------------------------
    async def _send(self, route: str, build: Callable[[], httpx.Request]) -> httpx.Response:
        attempt = 0
        for _ in range(self.max_retries + MAX_RATE_LIMITED + 1):
            try:
                response = await self.client.send(build())
            except httpx.TransportError as e:
                await self._transport_backoff(route, attempt, e)
                attempt += 1
                continue
            if response.status_code == 200:
                return response
            counted = await self._answer_backoff(route, response, attempt)
            attempt += counted
        raise ApiError(route, 429, "too_many_requests")

    async def _transport_backoff(self, route: str, attempt: int, error: Exception) -> None:
        if attempt >= self.max_retries:
            raise ApiError(route, None, "connection_failed", str(error)) from None
        await self._sleep("connection", self._delay(attempt))

    async def _answer_backoff(self, route: str, response: httpx.Response, attempt: int) -> int:
        """Wait before a retry (returning 1 when it counts against max_retries), or raise ApiError."""
        status = response.status_code
        if status == 429:
            await self._sleep(_429_reason(response), _retry_after(response))
            return 0
        if status >= 500 and attempt < self.max_retries:
            wait = _retry_after(response) if "retry-after" in response.headers else self._delay(attempt)
            await self._sleep(f"http_{status}", wait)
            return 1
        raise _error(route, response)

    def _delay(self, attempt: int) -> float:
        return float(min(self.backoff * 2**attempt, 30.0) * (0.5 + random.random() / 2))

    async def _sleep(self, reason: str, seconds: float) -> None:
        self.retries.add(reason)
        if self.on_retry is not None:
            self.on_retry(reason, seconds)
        await asyncio.sleep(seconds)
