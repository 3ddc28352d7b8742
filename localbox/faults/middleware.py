"""The outermost ASGI layer of the server: it keeps a record of every /2/ call for the request log and
carries out what the call's faults ask of HTTP itself (close the connection without an answer, break
it part way through the response body, throttle the response body).  It must wrap everything else:
only here is `send` the server's own."""

from __future__ import annotations

import asyncio
import logging
import time

from localbox.faults.calls import CURRENT, CallRecord, RequestLog
from localbox.observability.answers import AnswerTap, ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("localbox.faults")
SCOPE_KEY = "localbox.call"


def _abort(send: Send) -> bool:
    """Close the client's connection with nothing sent.  ASGI has no message for that, so reach the
    transport through uvicorn's request cycle (whose bound method `send` is); False if it is not there."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None or not hasattr(cycle, "disconnected"):
        return False
    cycle.disconnected = True  # uvicorn then neither answers 500 nor writes to the closed socket
    transport.abort()
    return True


async def _break(send: Send) -> bool:
    """Close the client's connection once what was written has gone out (a FIN after a short body: the
    client's read comes up short of Content-Length); False if uvicorn's transport is not there."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None or not hasattr(cycle, "disconnected"):
        return False
    cycle.disconnected = True
    for _ in range(500):  # wait (at most ~5 s) for the kernel to take the prefix, so that the client gets it
        if transport.is_closing() or not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.01)
    transport.close()
    return True


def _cut_point(message: Message, record: CallRecord) -> int:
    """How many response body bytes go out before a connection_reset breaks the connection."""
    if record.reset_after is not None:
        return record.reset_after
    length = 0
    for name, value in message.get("headers", []):
        if name.lower() == b"content-length" and value.isdigit():
            length = int(value)
    return int(length * (record.reset_fraction or 0))


class CallMiddleware:
    def __init__(self, app: ASGIApp, requests: RequestLog) -> None:
        self.app = app
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/2/"):
            await self.app(scope, receive, send)
            return
        record = CallRecord(route=path[3:])
        scope[SCOPE_KEY] = record
        token = CURRENT.set(record)
        tap = AnswerTap()
        dropped = False
        reset = False
        cut: int | None = None  # body bytes left before a connection_reset breaks the connection

        async def send_wrapper(message: Message) -> None:
            nonlocal dropped, reset, cut
            if dropped:
                return
            tap.see(message)
            if message["type"] == "http.response.start":
                if record.drop:
                    dropped = True
                    if not _abort(send):
                        # Not uvicorn: the best left is to break the response after its head.
                        await send(message)
                        raise ConnectionAbortedError("fault: response dropped")
                    return
                record.status = message["status"]
                if record.resets:
                    cut = _cut_point(message, record)
            elif message["type"] == "http.response.body" and cut is not None:
                body = message.get("body", b"")
                if len(body) < cut:
                    cut -= len(body)
                else:
                    await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
                    dropped = reset = True
                    if not await _break(send):
                        raise ConnectionResetError("fault: connection reset")
                    return
            elif message["type"] == "http.response.body" and record.bytes_per_second:
                await self._throttled(message, send, record.bytes_per_second)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            CURRENT.reset(token)
            if record.status is not None:
                record.error = tap.error
            if dropped:
                record.error = "connection_reset" if reset else "response_dropped"
            self.requests.add(record, time.time())

    @staticmethod
    async def _throttled(message: Message, send: Send, rate: int) -> None:
        body: bytes = message.get("body", b"")
        step = max(1, rate // 10)  # ten slices a second keep the pace smooth
        for i in range(0, len(body), step):
            piece = body[i : i + step]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(len(piece) / rate)
        await send({"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)})
