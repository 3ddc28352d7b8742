"""A minimal HTTP CONNECT proxy that sends every tunnel for a Dropbox host name to one local TLS port.

rclone has no option for the API host: it always dials https://{api,content}.dropboxapi.com. It does honour
HTTPS_PROXY, so pointing that at this proxy makes every tunnel land on our `localbox serve` (TLS stays end to
end between rclone and the server, hence the Dropbox names in the server certificate). Both ends are free
loopback ports, so parallel runs on the same machine cannot collide, and nothing system-wide (/etc/hosts, port
443) is touched. Any other host is refused with 403, so a client reaching for the real Internet fails loudly.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

DROPBOX_HOSTS = frozenset({"api.dropboxapi.com", "content.dropboxapi.com", "notify.dropboxapi.com"})


class ConnectProxy:
    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.tunnels: list[str] = []  # CONNECT targets seen, for assertions
        self.refused: list[str] = []
        self._open: set[socket.socket] = set()
        self._closing = False
        self._listener.settimeout(0.1)  # close() does not wake a blocked accept() everywhere (gVisor)
        self._thread = threading.Thread(target=self._accept_loop, name="connect-proxy", daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._closing = True
        self._thread.join(timeout=5)
        self._listener.close()
        for s in list(self._open):  # tunnels a client left open would keep the server from stopping quickly
            _close(s)

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        self._open.add(client)
        try:
            self._serve_tunnel(client)
        finally:
            self._open.discard(client)
            _close(client)

    def _serve_tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 16384:
                return
            head += chunk
        request_line, _, _ = head.partition(b"\r\n")
        parts = request_line.decode("latin-1").split()
        host = parts[1].rsplit(":", 1)[0] if len(parts) >= 2 and parts[0] == "CONNECT" else ""
        if host not in DROPBOX_HOSTS:
            self.refused.append(request_line.decode("latin-1"))
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self.tunnels.append(parts[1])
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self._open.add(upstream)
        try:
            upstream.settimeout(None)
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            early = head.partition(b"\r\n\r\n")[2]
            if early:
                upstream.sendall(early)
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()
        finally:
            self._open.discard(upstream)
            _close(upstream)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(262144):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
