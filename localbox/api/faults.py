"""Call-level fault injection at the endpoint: once a call is authenticated and its argument decoded,
the server's fault rules may answer it in Dropbox's wire form (429, 5xx, 422, a route error), slow it
down or hold its commit, make it run out of space or find its sessions expired, or have the HTTP layer
drop its response or break the connection part way through it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from localbox.api import responses
from localbox.domain.errors import CallError, PathRootFailure, PollFailure, SessionLookupError
from localbox.faults.calls import CallRecord
from localbox.faults.middleware import SCOPE_KEY
from localbox.faults.model import FaultBook, FaultRule
from localbox.services.accounts import Caller
from localbox.services.admin import AdminService
from localbox.services.upload_sessions import Body
from localbox.services.write_locks import COMMIT_DELAY
from localbox.spec import RouteSpec

CALL_KINDS = ("latency", "bandwidth", "slow_commit", "too_many_requests", "too_many_write_operations",
              "server_error", "invalid_root", "no_permission", "invalid_async_job_id", "content_hash_mismatch",
              "payload_too_large", "closed", "too_large", "expired_session", "insufficient_space",
              "partial_body", "drop_response", "connection_reset")
# Kinds that need a user the call acts as (a path root is the user's; noauth and team routes have none).
_USER_KINDS = frozenset({"invalid_root", "no_permission", "expired_session", "insufficient_space"})
_ANY_CALL_KINDS = tuple(k for k in CALL_KINDS if k not in _USER_KINDS)
_PATH_FIELDS = ("path", "from_path", "to_path")


def _fields(obj: Any) -> tuple[str, ...]:
    return tuple(getattr(type(obj), "_all_field_names_", ()))


def call_paths(arg: Any) -> Iterator[str]:
    """Every entry path a decoded argument names (path, commit.path, entries[].…, paths[])."""
    names = _fields(arg)
    for name in _PATH_FIELDS:
        if name in names and isinstance(getattr(arg, name), str):
            yield getattr(arg, name)
    if "commit" in names:
        yield from call_paths(arg.commit)
    for name in ("entries", "paths"):
        items = getattr(arg, name) if name in names else None
        for item in items or ():
            if isinstance(item, str):
                yield item
            else:
                yield from call_paths(item)


def session_ids(arg: Any) -> Iterator[str]:
    """The upload sessions a decoded argument names (cursor, bare v1 cursor, entries[].cursor)."""
    names = _fields(arg)
    if "session_id" in names:
        yield arg.session_id
    if "cursor" in names:
        yield from session_ids(arg.cursor)
    for item in (arg.entries if "entries" in names else None) or ():
        yield from session_ids(item)


async def _prefix(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The first `limit` bytes of a stream; the rest is never read (the connection is dropped after)."""
    left = limit
    async for chunk in chunks:
        if left <= 0:
            return
        yield chunk[:left]
        left -= len(chunk[:left])


async def _throttle(chunks: AsyncIterator[bytes], rate: int) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk
        await asyncio.sleep(len(chunk) / rate)


class CallFaults:
    def __init__(self, book: FaultBook, admin: AdminService) -> None:
        self.book = book
        self.admin = admin

    async def before(self, request: Request, route: RouteSpec, caller: Caller | None,
                     arg: Any) -> tuple[Caller | None, Response | None]:
        """Apply the call's faults; returns the caller the call runs as, and an answer that replaces
        the call (None: the call runs).  Raises the route errors it injects."""
        record: CallRecord | None = request.scope.get(SCOPE_KEY)
        if record is not None and caller is not None:
            record.account = caller.account.email
        if not self.book:
            return caller, None
        who = (caller.account.account_id, caller.account.email) if caller is not None else None
        fired = self.book.fire(CALL_KINDS if caller is not None else _ANY_CALL_KINDS, route.path, who,
                               list(call_paths(arg)))
        fired.sort(key=lambda r: CALL_KINDS.index(r.kind))
        for rule in fired:
            if record is not None:
                record.note(rule.id, rule.kind)
            caller, answer = await self._apply(rule, request, record, caller, arg)
            if answer is not None:
                return caller, answer
        return caller, None

    async def _apply(self, rule: FaultRule, request: Request, record: CallRecord | None, caller: Caller | None,
                     arg: Any) -> tuple[Caller | None, Response | None]:
        p = rule.params
        kind = rule.kind
        if kind == "latency":
            await asyncio.sleep(p["seconds"])
        elif kind == "bandwidth" and record is not None:
            record.bytes_per_second = p["bytes_per_second"]
        elif kind in ("too_many_requests", "too_many_write_operations"):
            as_text = kind == "too_many_requests" and p.get("format") == "text"
            return caller, responses.rate_limited(kind, p["retry_after"], "text/plain" if as_text else "")
        elif kind == "server_error":
            return caller, responses.server_error(p["status"], secrets.token_hex(16), p["retry_after"])
        elif kind == "slow_commit":
            COMMIT_DELAY.set(p["seconds"])  # this request's task; the write locks read it (services)
        elif kind == "invalid_root" and caller is not None:
            info = await self.admin.root_info(caller.account)
            raise PathRootFailure("invalid_root", info.root_namespace_id, info.home_namespace_id, info.home_path)
        elif kind == "no_permission":
            raise PathRootFailure("no_permission")
        elif kind == "invalid_async_job_id":
            raise PollFailure("invalid_async_job_id")
        elif kind in ("content_hash_mismatch", "payload_too_large"):
            raise CallError(kind)
        elif kind in ("closed", "too_large"):
            raise SessionLookupError(kind)
        elif kind == "expired_session" and caller is not None:
            await self.admin.expire_sessions(caller, session_ids(arg))
        elif kind == "insufficient_space" and caller is not None:
            caller = replace(caller, quota=0)  # every byte more is one too many
        elif kind == "connection_reset" and record is not None:
            record.reset_after = p["bytes"]
            record.reset_fraction = p["fraction"]
        elif kind in ("drop_response", "partial_body") and record is not None:
            record.drop = True
            if kind == "partial_body":
                record.body_prefix = p["bytes"]
                record.body_fraction = p["fraction"]
                if "content_hash" in _fields(arg):
                    arg.content_hash = None  # it covers the whole body, of which only a part is taken
        return caller, None

    def body(self, request: Request, body: Body) -> Body:
        """The request body as the call's faults let the handler see it."""
        record: CallRecord | None = request.scope.get(SCOPE_KEY)
        if record is None:
            return body
        chunks, length = body.chunks, body.length
        if record.body_prefix is not None or record.body_fraction is not None:
            limit = record.body_prefix
            if limit is None:
                limit = int((length or 0) * (record.body_fraction or 0))
            limit = min(limit, length) if length is not None else limit
            chunks, length = _prefix(chunks, limit), limit
        if record.bytes_per_second:
            chunks = _throttle(chunks, record.bytes_per_second)
        return Body(chunks, length)
