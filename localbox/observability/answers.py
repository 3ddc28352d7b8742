"""What an API answer says about itself, read off the ASGI messages on their way out.

Both outer layers (the request log in faults/middleware.py and the metrics in metrics.py) report a call's
status and its Dropbox error tag; they read them here so that the log and the metrics never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Error bodies are small; a larger one is not a Dropbox error envelope, and its tag is not worth the memory.
ERROR_BODY_LIMIT = 64 * 1024
_STATUS_TAGS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 429: "too_many_requests",
                500: "internal_error", 503: "service_unavailable"}


def error_tag(status: int | None, body: bytes) -> str | None:
    """The Dropbox error of an answer as a tag path ("path/conflict/file"), without the user's text."""
    if status is None or status < 400:
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        error = obj.get("error")
        if status == 429 and isinstance(error, dict) and isinstance(error.get("reason"), dict):
            return str(error["reason"].get(".tag"))[:100]
        tags: list[str] = []
        while isinstance(error, dict) and isinstance(error.get(".tag"), str):
            tags.append(error[".tag"])
            inner = error.get(error[".tag"])
            if not (isinstance(inner, dict) and ".tag" in inner):  # a flattened struct (UploadWriteFailed)
                inner = next((v for k, v in error.items() if k != ".tag" and isinstance(v, dict) and ".tag" in v),
                             None)
            error = inner
        if tags:
            return "/".join(tags)[:100]
    return _STATUS_TAGS.get(status, f"http_{status}")


class AnswerTap:
    """Watches the messages of one response: its status, and the start of its body when it is an error."""

    def __init__(self) -> None:
        self.status: int | None = None
        self._error_body = bytearray()

    def see(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif (message["type"] == "http.response.body" and self.status is not None and self.status >= 400
              and len(self._error_body) < ERROR_BODY_LIMIT):
            self._error_body.extend(message.get("body", b"")[:ERROR_BODY_LIMIT])

    @property
    def error(self) -> str | None:
        return error_tag(self.status, bytes(self._error_body))
