"""Raw-ingest ceiling: the least an ASGI server on uvicorn can do for an upload.

``python -m bench.raw_ingest --port P --dir D`` serves a bare ASGI app (no framework, no routing table) on the
same server stack localbox uses (uvicorn, which picks uvloop + httptools when installed).  For each
``POST /ingest/<name>`` it streams the body to ``D/<name>``, feeds SHA-256 inline and fsyncs before replying,
which is the minimum work a durable, content-hashed upload needs.  ``?append=1`` continues the file and its
running hash (one upload session of several requests); ``?close=1`` finalises the hash.

It runs in its own process so that it has a core and an allocator state of its own, like ``localbox serve``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class RawIngest:
    """The ASGI app.  State (running hashes, sizes) lives in memory: it only has to survive one benchmark."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._hashes: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if scope["method"] == "GET":
            await _reply(send, 200, {"ok": True})
            return
        name = path.removeprefix("/ingest/")
        if scope["method"] != "POST" or not path.startswith("/ingest/") or not _NAME.match(name):
            await _reply(send, 404, {"error": "not_found"})
            return
        query = parse_qs(scope["query_string"].decode())
        append = query.get("append") == ["1"]
        close = query.get("close") == ["1"]
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(self._dir / name, flags, 0o644)
        sha = self._hashes.pop(name, None) if append else None
        if sha is None:
            sha = hashlib.sha256()
        size = self._sizes.pop(name, 0) if append else 0
        try:
            more = True
            while more:
                message = await receive()
                body: bytes = message.get("body", b"")
                more = bool(message.get("more_body", False))
                if body:
                    # Write and hash inline on the event loop, as a simple server would: the doc's "direct"
                    # variant, which measured fastest (a thread hop per chunk cost ~16%).
                    sha.update(body)
                    view = memoryview(body)
                    while view:
                        view = view[os.write(fd, view) :]
                    size += len(body)
            os.fsync(fd)
        finally:
            os.close(fd)
        result: dict[str, Any] = {"size": size}
        if close:
            result["sha256"] = sha.hexdigest()
        else:
            self._hashes[name] = sha
            self._sizes[name] = size
        await _reply(send, 200, result)


async def _reply(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--dir", type=Path, required=True, help="directory the uploaded bodies are written to"
    )
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    # No access log and no lifespan: per-request logging would be overhead localbox may or may not have,
    # and the ceiling should not include it.
    uvicorn.run(
        RawIngest(args.dir),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
