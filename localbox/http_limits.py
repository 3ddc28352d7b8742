"""Slow and oversized requests on the HTTP layer: uvicorn's httptools protocol with deadlines and caps.

uvicorn bounds only the idle time between requests (timeout_keep_alive).  A client that connects and
trickles its request headers a byte at a time, or stops sending half way through a body, holds a
connection and a task forever (slowloris), and httptools buffers a header of any size.  Here:
- a request's headers must be complete within `header_timeout` of its first byte (or of the
  connection, for the first request): else 408 and the connection closes;
- while a request body is being received, the connection closes after `body_timeout` without a
  byte (not counted while the server itself has paused reading: that is our back-pressure);
- the request line and headers together may not exceed `max_header_bytes`: else 431 and close;
- while a response waits for its client (the transport's write buffer is over its high-water mark,
  so the app is paused), the client must take at least SEND_PROGRESS bytes of it (or all that is
  left) in every `send_timeout`: else the connection closes.  A client that asks for a large
  download and then reads nothing, or a byte a minute, would otherwise hold the connection, its
  task and the blob store's read-ahead forever; a slow but steady reader is not affected.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The Dropbox-API-Arg of an append_batch with 1000 entries is ~150 KB; nothing legitimate comes close.
DEFAULT_MAX_HEADER_BYTES = 1024 * 1024

# What a waiting response's client must take per send_timeout (uvicorn's write high-water mark):
# with the default 3 minutes, ~360 bytes/s.
SEND_PROGRESS = 64 * 1024

_STATUS = {408: b"408 Request Timeout", 431: b"431 Request Header Fields Too Large"}


def guarded_protocol(header_timeout: float, body_timeout: float, send_timeout: float = 180.0,
                     max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> type[asyncio.Protocol]:
    """An httptools protocol class for uvicorn.Config(http=...) with these limits."""

    class Guarded(_Guarded):
        pass

    Guarded.header_timeout = header_timeout
    Guarded.body_timeout = body_timeout
    Guarded.send_timeout = send_timeout
    Guarded.max_header_bytes = max_header_bytes
    return Guarded


class _Guarded(HttpToolsProtocol):
    header_timeout = 20.0
    body_timeout = 60.0
    send_timeout = 180.0
    max_header_bytes = DEFAULT_MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0  # raw bytes received while a request's headers are incomplete
        self._parsed_header_bytes = 0  # request line and headers as parsed
        self._in_body = False
        self._refused = False
        self._send_deadline: asyncio.TimerHandle | None = None  # armed while writing is paused
        self._send_mark = 0  # the write buffer's size when it was armed

    # -- timers -------------------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_body:
            if self.flow.read_paused:  # the app is behind, not the client
                self._arm(self.body_timeout)
                return
            self.transport.abort()  # the app sees the client gone (ClientDisconnect)
            return
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        self._disarm()
        self._refused = True
        self.transport.write(b"HTTP/1.1 " + _STATUS[status] + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        self.transport.close()

    # -- protocol hooks -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)  # the first request's headers, from the connection on

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._disarm_send()
        super().connection_lost(exc)

    # -- a client that does not read its response -----------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_deadline is None:
            self._arm_send()

    def resume_writing(self) -> None:  # the client took the buffer below its low-water mark
        self._disarm_send()
        super().resume_writing()

    def _unsent(self) -> int:
        """Response bytes the client has not taken yet: the transport's buffer plus the kernel's send
        queue.  The kernel part matters: with a large socket send buffer the transport's buffer only
        moves after the client has read a large share of it (TCP reports the socket writable again only
        once a third or so of its buffer is free), so a slow but steady reader would look stalled."""
        unsent = self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")  # asyncio's TransportSocket (or None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:  # TIOCOUTQ (SIOCOUTQ on a TCP socket): bytes sent but not yet acknowledged by the client
                raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
                unsent += struct.unpack("i", raw)[0]
            except OSError:
                pass
        return unsent

    def _arm_send(self) -> None:
        self._send_mark = self._unsent()
        self._send_deadline = self.loop.call_later(self.send_timeout, self._send_expired)

    def _disarm_send(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _send_expired(self) -> None:
        self._send_deadline = None
        if self.transport.is_closing():
            return
        taken = self._send_mark - self._unsent()  # paused: nothing was added
        if taken >= min(SEND_PROGRESS, self._send_mark):
            self._arm_send()  # slow but moving
            return
        self.transport.abort()  # connection_lost: the app's sends end, the download is dropped

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_body:
            self._arm(self.body_timeout)
        else:
            self._header_bytes += len(data)
        super().data_received(data)
        if not self._in_body and self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parsed_header_bytes = 0
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm(self.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._parsed_header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_header_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._parsed_header_bytes > self.max_header_bytes:  # arrived whole, in one read
            self._refuse(431)
            return
        self._in_body = True
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_body = False
        self._header_bytes = 0
        self._disarm()
        super().on_message_complete()
