"""SDK-free HTTP clients built on ``http.client`` with one kept-alive connection each.

Why not the Dropbox SDK or httpx: the client shares two cores with the server, so it must cost as little as
possible per request and must not copy bodies.  ``http.client`` sends a small body in the same ``send()`` as
the headers (no Nagle/delayed-ACK stall), and a large body is sent as slices of one pre-allocated buffer,
so the kernel copies straight from it.

A connection is not thread-safe: give each thread its own (``ConnectionPerThread``).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

# Big enough that per-call overhead vanishes, small enough that one sendall() never holds a huge iovec.
SEND_SLICE = 4 * 1024 * 1024
# uvicorn closes keep-alive connections idle for 5 s (its default); a request sent into such a socket fails
# with RemoteDisconnected, and an upload cannot be retried blindly.  Reconnect before that can happen.
MAX_IDLE_S = 2.0


class BenchHTTPError(RuntimeError):
    """A request answered with an unexpected status; carries the body for the report."""

    def __init__(self, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{path} -> HTTP {status}: {body[:300]!r}")
        self.status = status


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 600.0) -> None:
        self._conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self._last_used = time.monotonic()

    def post(self, path: str, headers: dict[str, str], body: bytes | memoryview = b"") -> tuple[int, bytes]:
        """POST ``body``; returns (status, response body).  Reconnects transparently if the server closed."""
        return self.request("POST", path, headers, body)

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | memoryview = b""
    ) -> tuple[int, bytes]:
        """Any method with a body (PUT for nginx); returns (status, response body)."""
        response = self._send(method, path, headers, body)
        data = response.read()
        self._last_used = time.monotonic()
        return response.status, data

    def download(self, method: str, path: str, headers: dict[str, str], sink: bytearray) -> Downloaded:
        """Sends a bodiless request and reads the response body into ``sink`` over and over (discarding
        it), so a 1 GiB download costs the client no allocation; raises ``BenchHTTPError`` unless 200."""
        response = self._send(method, path, headers, b"")
        if response.status != 200:
            data = response.read()
            self._last_used = time.monotonic()
            raise BenchHTTPError(path, response.status, data)
        view = memoryview(sink)
        nbytes = 0
        while True:
            got = response.readinto(view)
            if not got:
                break
            nbytes += got
        self._last_used = time.monotonic()
        return Downloaded(nbytes, {key.lower(): value for key, value in response.getheaders()})

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | memoryview
    ) -> http.client.HTTPResponse:
        conn = self._conn
        if time.monotonic() - self._last_used > MAX_IDLE_S:
            conn.close()  # the next putrequest opens a fresh connection
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        if len(body) <= SEND_SLICE:
            conn.endheaders(body if isinstance(body, bytes) else bytes(body))
        else:
            conn.endheaders()
            view = memoryview(body)
            try:
                for start in range(0, len(view), SEND_SLICE):
                    conn.send(view[start : start + SEND_SLICE])
            except (BrokenPipeError, ConnectionResetError):
                # The server answered early (e.g. an error before reading the body) and closed: its answer
                # explains the failure better than the broken pipe does, so try to read it.
                pass
        return conn.getresponse()

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True, slots=True)
class Downloaded:
    nbytes: int  # response body bytes read
    headers: dict[str, str]  # response headers, names lower-cased (e.g. dropbox-api-result)


class ConnectionPerThread:
    """Lazily opens one ``Connection`` per calling thread, so a thread pool reuses its connections."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def get(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = Connection(self._port)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _arg(value: dict[str, Any]) -> str:
    # The SDK sends compact ASCII JSON in Dropbox-API-Arg; do the same so header parsing costs the same.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


class Dropbox:
    """The handful of Dropbox v2 upload-session routes the benchmarks use, on one connection."""

    def __init__(self, conn: Connection, token: str) -> None:
        self.conn = conn
        self._auth = f"Bearer {token}"

    def _upload(self, route: str, arg: dict[str, Any], body: bytes | memoryview = b"") -> Any:
        path = f"/2/files/{route}"
        headers = {
            "Authorization": self._auth,
            "Content-Type": "application/octet-stream",
            "Dropbox-API-Arg": _arg(arg),
        }
        status, data = self.conn.post(path, headers, body)
        if status != 200:
            raise BenchHTTPError(path, status, data)
        return json.loads(data) if data else None

    def rpc(self, route: str, arg: dict[str, Any], ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        path = f"/2/{route}"
        headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        status, data = self.conn.post(path, headers, _arg(arg).encode())
        if status not in ok:
            raise BenchHTTPError(path, status, data)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data.decode(errors="replace")

    def start(self, body: bytes | memoryview = b"", close: bool = False, concurrent: bool = False) -> str:
        arg: dict[str, Any] = {"close": close}
        if concurrent:
            arg["session_type"] = {".tag": "concurrent"}
        result = self._upload("upload_session/start", arg, body)
        return str(result["session_id"])

    def append(self, session_id: str, offset: int, body: bytes | memoryview, close: bool = False) -> None:
        self._upload(
            "upload_session/append_v2", {"cursor": _cursor(session_id, offset), "close": close}, body
        )

    def finish(self, session_id: str, offset: int, path: str) -> Any:
        arg = {"cursor": _cursor(session_id, offset), "commit": _commit(path)}
        return self._upload("upload_session/finish", arg)

    def download(self, path: str, sink: bytearray) -> Downloaded:
        """files/download: the body is read into ``sink`` and discarded; checks the result header's size."""
        headers = {"Authorization": self._auth, "Dropbox-API-Arg": _arg({"path": path})}
        got = self.conn.download("POST", "/2/files/download", headers, sink)
        result = json.loads(got.headers.get("dropbox-api-result", "{}"))
        if result.get("size") != got.nbytes:
            raise RuntimeError(f"download {path}: {got.nbytes} bytes, result says {result.get('size')}")
        return got

    def finish_batch_wait(self, entries: list[tuple[str, int, str]], poll_s: float = 0.002) -> BatchOutcome:
        """finish_batch, then poll /check every ``poll_s`` until ``complete``."""
        start = time.perf_counter()
        _, launch = self.rpc("files/upload_session/finish_batch", {"entries": _batch(entries)})
        launch_s = time.perf_counter() - start
        if launch.get(".tag") == "complete":
            return BatchOutcome(launch["entries"], 0, launch_s)
        job = {"async_job_id": launch["async_job_id"]}
        polls = 0
        while True:
            polls += 1
            _, status = self.rpc("files/upload_session/finish_batch/check", job)
            if status.get(".tag") == "complete":
                return BatchOutcome(status["entries"], polls, launch_s)
            time.sleep(poll_s)

    def finish_batch_v2(self, entries: list[tuple[str, int, str]]) -> Any:
        _, result = self.rpc("files/upload_session/finish_batch_v2", {"entries": _batch(entries)})
        return result["entries"]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    entries: list[Any]  # the result entries of ``complete``
    polls: int  # /check calls until ``complete`` (0: the launch itself answered ``complete``)
    launch_s: float  # seconds until finish_batch answered (with the job id)


def _cursor(session_id: str, offset: int) -> dict[str, Any]:
    return {"session_id": session_id, "offset": offset}


def _commit(path: str) -> dict[str, Any]:
    return {"path": path, "mode": "add"}


def _batch(entries: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    return [{"cursor": _cursor(sid, size), "commit": _commit(path)} for sid, size, path in entries]


def count_failures(entries: Any) -> int:
    """Batch result entries that are not ``success`` (they would make a latency figure meaningless)."""
    return sum(1 for entry in entries if entry.get(".tag") != "success")


class RawIngestClient:
    """Client of ``bench.raw_ingest`` with the same request shapes as ``Dropbox``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, name: str, body: bytes | memoryview, append: bool = False, close: bool = True) -> Any:
        path = f"/ingest/{name}?append={int(append)}&close={int(close)}"
        status, data = self.conn.post(path, {"Content-Type": "application/octet-stream"}, body)
        if status != 200:
            raise BenchHTTPError(path, status, data)
        return json.loads(data)


class NginxClient:
    """PUT and GET against the nginx baseline (WebDAV ``dav_methods PUT``), with the same connection type."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, name: str, body: bytes | memoryview) -> None:
        path = f"/{name}"
        status, data = self.conn.request("PUT", path, {"Content-Type": "application/octet-stream"}, body)
        if status not in (201, 204):  # created / replaced
            raise BenchHTTPError(path, status, data)

    def get(self, name: str, sink: bytearray) -> Downloaded:
        return self.conn.download("GET", f"/{name}", {}, sink)
