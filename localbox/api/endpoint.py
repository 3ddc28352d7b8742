"""The one endpoint behind /2/<route>: route lookup, auth, argument decoding, dispatch, and the
single place where exceptions become HTTP responses."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from localbox.api import convert, principals, responses
from localbox.api.context import Call, Services
from localbox.api.convert import route_error_json
from localbox.api.faults import CallFaults
from localbox.domain.errors import (
    AuthFailure,
    BadRequest,
    DomainError,
    PathRootFailure,
    RateLimited,
    StoreUnavailable,
)
from localbox.observability.context import REQUEST_ID_KEY
from localbox.services.accounts import Caller
from localbox.services.mounts import team_view
from localbox.services.teams import TeamPrincipal, TransportLimitReached
from localbox.services.upload_sessions import Body
from localbox.spec import DATA_TRANSPORT, ROUTES, RouteSpec, WireError, common, decode_arg, encode

log = logging.getLogger("localbox.api")

Handler = Callable[[Services, Call], Awaitable[Any]]
MAX_RPC_BODY = 64 * 1024 * 1024

_CONTENT_TYPES = {
    "rpc": ("application/json", "application/json; charset=utf-8", "text/plain; charset=dropbox-cors-hack"),
    "upload": ("application/octet-stream", "text/plain; charset=dropbox-cors-hack"),
}


class Download:
    """A download handler's answer: the result value plus the byte stream to send."""

    def __init__(self, result: Any, chunks: AsyncIterator[bytes], length: int, status: int = 200,
                 headers: dict[str, str] | None = None) -> None:
        self.result = result
        self.chunks = chunks
        self.length = length
        self.status = status
        self.headers = headers or {}


def _header_text(value: str) -> str:
    """Starlette decodes headers as latin-1; clients such as rclone send raw UTF-8 in Dropbox-API-Arg."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


async def _read_limited(request: Request, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest("request body is too large")
        parts.append(chunk)
    return b"".join(parts)


class Endpoint:
    def __init__(self, services: Services, handlers: dict[str, Handler], faults: CallFaults | None = None) -> None:
        self.services = services
        self.handlers = handlers
        self.faults = faults  # injected faults (test servers); None costs nothing per call
        missing = set(handlers) - set(ROUTES)
        if missing:
            raise RuntimeError(f"handlers for unknown routes: {sorted(missing)}")

    async def __call__(self, request: Request) -> Response:
        # The id the observability middleware gave this request (its log lines carry it too).
        request_id = request.scope.get(REQUEST_ID_KEY) or secrets.token_hex(16)
        route_path = request.path_params["route"]
        route = ROUTES.get(route_path)
        if request.method == "OPTIONS":
            response = responses.cors_preflight(route_path, request.query_params.get("reject_cors_preflight"),
                                                request.headers.get("access-control-request-headers"))
            response.headers["x-dropbox-request-id"] = request_id
            return response
        try:
            response = await self._handle(request, route_path, route)
        except DomainError as e:
            assert route is not None
            summary, error = route_error_json(route.path, route.error, e)
            response = responses.route_error(summary, error)
        except BadRequest as e:
            response = responses.bad_request(route_path, str(e))
        except AuthFailure as e:
            response = responses.auth_error(e.tag, e.required_scope)
        except PathRootFailure as e:
            response = responses.path_root_error(_path_root_error_json(e))
        except RateLimited as e:
            response = responses.rate_limited(e.reason, e.retry_after, request.headers.get("accept", ""))
        except TransportLimitReached:
            response = responses.transport_limit_reached()
        except ClientDisconnect:
            log.info("client went away during request %s to %s", request_id, route_path)
            response = responses.internal_error(request_id)
        except StoreUnavailable:
            log.warning("store unavailable for request %s", request_id, exc_info=True)
            response = responses.unavailable(request_id)
        except Exception:
            log.exception("request %s to %s failed", request_id, route_path)
            response = responses.internal_error(request_id)
        response.headers["x-dropbox-request-id"] = request_id
        if "origin" in request.headers:
            response.headers.update(responses.CORS_HEADERS)
        return response

    async def _handle(self, request: Request, route_path: str, route: RouteSpec | None) -> Response:
        handler = self.handlers.get(route_path)
        if route is None or handler is None:
            raise BadRequest(f'Unknown API function: "{route_path}"')
        if request.method != "POST" and route.style != "download":
            # Dropbox's own wording (as clients have reported it), two spaces included.
            raise BadRequest(f'Your request\'s HTTP request method is "{request.method}".  '
                             'This function only accepts the HTTP request method "POST".')

        caller: Caller | None = None
        team: TeamPrincipal | None = None
        if route.auth == "noauth":
            arg = await self._argument(request, route)
        else:
            who = await principals.authenticate(self.services, self._bearer(request))
            await principals.admit(self.services, who, request)
            arg = await self._argument(request, route)
            if route.auth == "team":
                team = principals.team_call(who)  # a user token here is the wrong kind before any scope
            if route.scope not in who.scopes:
                raise AuthFailure("missing_scope", route.scope)
            if team is None:
                acting = await principals.user_call(self.services, route, who, request)
                account = acting.account
                quota = account.quota if account.quota is not None else self.services.quota
                caller = Caller(account=account, scopes=acting.scopes, namespace_id=account.root_namespace_id,
                                quota=quota, select_admin=acting.select_admin)
                caller = replace(caller, namespace_id=await self._path_root(request, caller))
                if route.path in DATA_TRANSPORT:
                    await self.services.teams.count_transport_call(account.account_id)
        if self.faults is not None:
            caller, answer = await self.faults.before(request, route, caller, arg)
            if answer is not None:
                return answer
        body = Body(request.stream(), _content_length(request)) if route.style == "upload" else Body(_nothing(), 0)
        if self.faults is not None:
            body = self.faults.body(request, body)
        view = await team_view(self.services.accounts.store, caller) if caller is not None else None
        token = convert.VIEW.set(view)
        try:
            result = await handler(self.services, Call(route, arg, caller, body, request, team))
        finally:
            convert.VIEW.reset(token)
        if isinstance(result, Download):
            headers = {"Dropbox-API-Result": encode(route.result, result.result),
                       "Content-Length": str(result.length), **result.headers}
            chunks = result.chunks if request.method == "HEAD" else await _first_slice_fetched(result.chunks)
            return _StreamResponse(chunks, result.status, headers)
        if isinstance(result, Response):
            return result
        return responses.json_ok(encode(route.result, result))

    @staticmethod
    def _bearer(request: Request) -> str:
        value = request.headers.get("authorization") or request.query_params.get("authorization")
        if not value:
            raise BadRequest('Must provide HTTP header "Authorization" or URL parameter "authorization".')
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BadRequest(
                f'Invalid authorization value in HTTP header "Authorization": "{value}".  '
                'Expecting "Bearer <oauth2-access-token>".')
        return token.strip()

    async def _argument(self, request: Request, route: RouteSpec) -> Any:
        content_type = (request.headers.get("content-type") or "").strip()
        if route.style == "rpc":
            raw = await _read_limited(request, MAX_RPC_BODY)
            if content_type or raw.strip():  # a bare empty body stands for a Void argument
                _check_content_type(content_type, _CONTENT_TYPES["rpc"])
            try:
                return decode_arg(route.arg, raw)
            except WireError as e:
                raise BadRequest(f"request body: {e}") from None
        if route.style == "upload" and content_type:
            _check_content_type(content_type, _CONTENT_TYPES["upload"])
        header = request.headers.get("dropbox-api-arg")
        where = 'HTTP header "Dropbox-API-Arg"'
        if header is None:
            header = request.query_params.get("arg")
            where = 'URL parameter "arg"'
        if header is None:
            raise BadRequest('Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".')
        try:
            return decode_arg(route.arg, _header_text(header))
        except WireError as e:
            raise BadRequest(f"{where}: {e}") from None

    async def _path_root(self, request: Request, caller: Caller) -> str:
        raw = request.headers.get("dropbox-api-path-root")
        if raw is None:
            return caller.account.root_namespace_id
        try:
            root = decode_arg(common.PathRoot_validator, _header_text(raw))
        except WireError as e:
            raise BadRequest(f'Invalid value for HTTP header "Dropbox-API-Path-Root": {e}') from None
        if root.is_home():
            tag, ns = "home", None
        elif root.is_root():
            tag, ns = "root", root.get_root()
        elif root.is_namespace_id():
            tag, ns = "namespace_id", root.get_namespace_id()
        else:
            raise BadRequest('Invalid value for HTTP header "Dropbox-API-Path-Root"')
        resolved: str = await self.services.accounts.resolve_path_root(caller, tag, ns)
        return resolved


def _path_root_error_json(e: PathRootFailure) -> dict[str, Any]:
    if e.tag == "invalid_root":
        info = {".tag": "user", "root_namespace_id": e.root_namespace_id, "home_namespace_id": e.home_namespace_id}
        if e.home_path is not None:
            info = {**info, ".tag": "team", "home_path": e.home_path}
        return {".tag": "invalid_root", "invalid_root": info}
    return {".tag": e.tag}


def _check_content_type(got: str, allowed: tuple[str, ...]) -> None:
    """Media types compare case- and space-insensitively ("application/json;charset=UTF-8")."""
    if got.lower().replace(" ", "") not in [a.replace(" ", "") for a in allowed]:
        expecting = ", ".join(json.dumps(a) for a in allowed)
        raise BadRequest(f'Bad HTTP "Content-Type" header: {json.dumps(got)}.  Expecting one of {expecting}.')


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or "chunked" in request.headers.get("transfer-encoding", "").lower():
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover


async def _first_slice_fetched(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The same stream with its first slice already read from the blob store.  Once the 200 and its
    headers are out, a store failure can only cut the connection; a failure on the first slice (an
    object store that is down, a missing block) is raised here instead, before any header is sent,
    and answered as a proper error (503 with Retry-After for StoreUnavailable)."""
    it = aiter(chunks)
    try:
        first = await anext(it)
    except StopAsyncIteration:
        return _nothing()

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for chunk in it:
            yield chunk

    return rest()


class _StreamResponse(Response):
    """A streaming body whose iterator is only started when the response is sent, and dropped as soon
    as the client is gone (a connection closed by the send timeout of http_limits included): reading
    the rest of a large file from the blob store for nobody would only cost."""

    def __init__(self, chunks: AsyncIterator[bytes], status: int, headers: dict[str, str]) -> None:
        super().__init__(status_code=status, headers=headers, media_type="application/octet-stream")
        self.chunks = chunks

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                async for chunk in self.chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()

            group.start_soon(stream)
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()
