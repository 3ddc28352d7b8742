"""Run one ASGI app on one or more listeners (plain HTTP and HTTPS) in one process, with one lifespan.

A uvicorn Server has one TLS setting for all its sockets, so each listener gets its own Server on the
same event loop.  The first (the lead) runs the app's lifespan and owns the SIGINT/SIGTERM handlers.
The others start once the lifespan is up, share its state, and are stopped and drained before it shuts
down: no request reaches an app that has not started or has already stopped.  Sockets are bound before
anything starts (listening only once served), so a busy port fails cleanly with nothing half-running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import Config

log = logging.getLogger("localbox")


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int
    certfile: Path | None = None  # with keyfile: HTTPS
    keyfile: Path | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.certfile else 'http'}://{host}:{self.port}"


class ServeError(Exception):
    pass


def _close_idle_now(server: uvicorn.Server) -> None:
    """Close keep-alive connections that sit idle at shutdown without waiting for their peers.

    uvicorn closes an idle connection gracefully; over TLS that waits for the client's close_notify,
    which an idle pooled client never sends, so a stop took asyncio's 30 s SSL shutdown timeout.
    Connections with a request in flight are left to finish their response.
    """
    for connection in list(server.server_state.connections):
        connection.shutdown()  # idle: starts closing the transport; busy: closes after the response
        transport = getattr(connection, "transport", None)
        if transport is not None and transport.is_closing():
            transport.abort()


class _Follower(uvicorn.Server):
    """A listener without a lifespan of its own, stopped by its lead."""

    def __init__(self, config: uvicorn.Config, lead: _Lead) -> None:
        super().__init__(config)
        self.lead = lead

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the lead's handlers stop everyone

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Requests on this listener see the state the lead's lifespan set up (LifespanOff's is empty).
        self.lifespan.state = self.lead.lifespan.state
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        _close_idle_now(self)
        await super().shutdown(sockets)


class _Lead(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.followers: list[tuple[_Follower, socket.socket]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # the lifespan, then this listener
        for follower, sock in self.followers:
            self._tasks.append(asyncio.create_task(follower.serve(sockets=[sock])))
        while not all(f.started for f, _ in self.followers) and not any(t.done() for t in self._tasks):
            await asyncio.sleep(0.01)

    async def on_tick(self, counter: int) -> bool:
        if any(t.done() for t in self._tasks):  # a listener died: stop the others rather than limp on
            for t in self._tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    log.error("a listener failed", exc_info=t.exception())
            return True
        return await super().on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        for follower, _ in self.followers:
            follower.should_exit, follower.force_exit = self.should_exit, self.force_exit

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:  # stop accepting here too while the others drain
            server.close()
        for follower, _ in self.followers:
            follower.should_exit = True
        drain = self.lifespan.state.get("localbox.drain")  # app.DRAIN: end long waits (longpolls) first
        if drain is not None:
            await drain()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        _close_idle_now(self)
        await super().shutdown(sockets)  # drains this listener, then the lifespan shutdown


def _tls_context(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context with the floor made explicit rather than left to the Python/OpenSSL build:
    TLS 1.2 or later, AEAD suites with forward secrecy for TLS 1.2 (TLS 1.3's are all fine), no TLS
    compression or client-initiated renegotiation."""
    ctx = default()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL")
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return ctx


def _bind(listener: Listener) -> socket.socket:
    """Bound but not listening: connections are refused, not queued, until its server is serving."""
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listener.host, listener.port))
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {listener.url}: {e}") from None
    return sock


def serve(app: Any, listeners: Sequence[Listener], **config: Any) -> None:
    """Serve `app` on every listener until SIGINT/SIGTERM; `config` goes to each uvicorn.Config."""
    configs = []
    for i, listener in enumerate(listeners):
        c = uvicorn.Config(app, host=listener.host, port=listener.port, lifespan="auto" if i == 0 else "off",
                           ssl_certfile=listener.certfile, ssl_keyfile=listener.keyfile,
                           ssl_context_factory=_tls_context if listener.certfile else None, **config)
        try:
            c.load()  # reads the certificate and key now, so a bad pair fails before anything listens
        except OSError as e:
            raise ServeError(f"cannot use the TLS certificate {listener.certfile}: {e}") from None
        configs.append(c)
    sockets = [_bind(listener) for listener in listeners]
    lead = _Lead(configs[0])
    lead.followers = [(_Follower(c, lead), s) for c, s in zip(configs[1:], sockets[1:], strict=True)]
    with contextlib.suppress(KeyboardInterrupt):  # re-raised by uvicorn after a graceful Ctrl+C stop
        lead.run(sockets=[sockets[0]])
    if not lead.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits
