"""Limits against a real server: open sessions and pending jobs per account, slow clients (slowloris),
oversized headers and RPC bodies, and the connection cap.  Each is configured small here; the defaults
are in the README's configuration table."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dropbox
import httpx
import pytest
from _apiwire import Api
from harness import LocalServer, make_sdk, running_server
from reliability_backends import Backend

pytestmark = pytest.mark.reliability
# Slow clients and size caps are the HTTP layer's, whatever stores the data; embedded only, for CI time.
RELIABILITY_BACKENDS = ("embedded",)

MAX_SESSIONS = 5
MAX_JOBS = 2
TIMEOUT = 2.0  # --header-timeout, --body-timeout and --send-timeout
MAX_CONNECTIONS = 40
ADMIN = secrets.token_urlsafe(12)


@pytest.fixture(scope="module")
def limited(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    args = [*backend.serve_args, "--max-open-sessions", str(MAX_SESSIONS), "--max-pending-jobs", str(MAX_JOBS),
            "--header-timeout", f"{TIMEOUT:g}s", "--body-timeout", f"{TIMEOUT:g}s", "--send-timeout", f"{TIMEOUT:g}s",
            "--max-connections", str(MAX_CONNECTIONS), "--admin-token", ADMIN]
    with running_server(tmp_path_factory.mktemp("limits") / "data", args) as srv:
        yield srv


@pytest.fixture
def http(limited: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited.url, timeout=30, trust_env=False) as c:
        yield c


def _too_many_requests(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["reason"] == {".tag": "too_many_requests"}, r.text
    assert int(r.headers["retry-after"]) >= 1


def test_open_sessions_per_account_are_capped(limited: LocalServer, http: httpx.Client) -> None:
    a, b = Api(http, limited.new_account().token), Api(http, limited.new_account().token)
    sids = [a.start_ok(b"x") for _ in range(MAX_SESSIONS - 2)]
    sids += a.rpc("files/upload_session/start_batch", {"num_sessions": 2}).json()["session_ids"]
    _too_many_requests(a.content("files/upload_session/start", {}, b"y"))
    _too_many_requests(a.rpc("files/upload_session/start_batch", {"num_sessions": 1}))
    # The official SDK sees Dropbox's RateLimitError with the documented reason.
    sdk = make_sdk(limited, a.token)
    with pytest.raises(dropbox.exceptions.RateLimitError) as e:
        sdk.files_upload_session_start(b"z")
    assert e.value.error.reason.is_too_many_requests() and e.value.backoff >= 1
    # Other accounts are not affected; a committed session frees a place.
    b.start_ok(b"b")
    a.finish_ok(sids[0], 1, "/done.bin")
    a.start_ok(b"again")
    _too_many_requests(a.content("files/upload_session/start", {}, b"y"))


def test_pending_jobs_per_account_are_capped(limited: LocalServer, http: httpx.Client) -> None:
    acct = limited.new_account()
    a, b = Api(http, acct.token), Api(http, limited.new_account().token)
    r = http.post("/admin/faults", json={"kind": "job_stuck", "account": acct.email, "params": {}},
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 201, r.text
    try:
        for i in range(MAX_JOBS):
            launched = a.rpc("files/upload_session/finish_batch", {"entries": []}).json()
            assert launched[".tag"] in ("async_job_id", "complete"), launched
            if launched[".tag"] == "complete":
                pytest.skip("an empty batch completes at once here")
            assert a.rpc("files/upload_session/finish_batch/check",
                         {"async_job_id": launched["async_job_id"]}).json()[".tag"] == "in_progress", i
        _too_many_requests(a.rpc("files/upload_session/finish_batch", {"entries": []}))
        _too_many_requests(a.rpc("files/delete_batch", {"entries": [{"path": "/x"}]}))
        assert b.rpc("files/upload_session/finish_batch", {"entries": []}).status_code == 200
    finally:
        http.delete("/admin/faults", headers={"Authorization": f"Bearer {ADMIN}"})


def _connect(server: LocalServer) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    s.settimeout(30)
    return s


def _closed_after(s: socket.socket, trickle: bytes | None) -> tuple[float, bytes]:
    """Send `trickle` a byte every 0.2 s (or nothing) until the server closes; seconds taken, bytes got."""
    start = time.monotonic()
    s.setblocking(False)
    got = b""
    i = 0
    while time.monotonic() - start < 30:
        try:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        except BlockingIOError:
            pass
        except OSError:
            break
        if trickle is not None:
            try:
                s.send(trickle[i % len(trickle): i % len(trickle) + 1])
            except OSError:
                break
            i += 1
        time.sleep(0.2)
    return time.monotonic() - start, got


def test_slowloris_is_cut_off_while_others_are_served(limited: LocalServer) -> None:
    token = limited.new_account().token
    slow = []
    for _ in range(10):
        s = _connect(limited)
        s.sendall(b"POST /2/check/user HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    results: list[tuple[float, bytes]] = []
    threads = [threading.Thread(target=lambda s=s: results.append(_closed_after(s, b"X-Slow: aaaa\r\n")))
               for s in slow]
    for t in threads:
        t.start()
    # Meanwhile a normal client is served at once.
    latencies = []
    with httpx.Client(base_url=limited.url, timeout=10, trust_env=False) as http:
        for _ in range(10):
            t0 = time.monotonic()
            r = http.post("/2/check/user", json={"query": "hi"}, headers={"Authorization": f"Bearer {token}"})
            latencies.append(time.monotonic() - t0)
            assert r.status_code == 200
            time.sleep(0.1)
    for t in threads:
        t.join(40)
    assert max(latencies) < 1.0, latencies
    for took, got in results:
        assert TIMEOUT - 0.5 < took < TIMEOUT + 3, took  # cut off at the header deadline, not before
        assert got.startswith(b"HTTP/1.1 408"), got
    for s in slow:
        s.close()


def test_silent_connection_and_stalled_body_are_closed(limited: LocalServer) -> None:
    s = _connect(limited)  # connects, says nothing
    took, got = _closed_after(s, None)
    assert took < TIMEOUT + 3 and got.startswith(b"HTTP/1.1 408"), (took, got)
    s.close()
    token = limited.new_account().token
    s = _connect(limited)
    arg = json.dumps({"path": "/stalled.bin", "mode": "add"})
    s.sendall(f"POST /2/files/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
              f"Content-Type: application/octet-stream\r\nDropbox-API-Arg: {arg}\r\n"
              f"Content-Length: 100000\r\n\r\n".encode() + b"z" * 5000)
    took, _ = _closed_after(s, None)
    assert took < TIMEOUT + 3, took
    s.close()
    with httpx.Client(base_url=limited.url, timeout=10, trust_env=False) as http:
        r = Api(http, token).metadata("/stalled.bin")
        assert r.status_code == 409  # the half-sent upload left nothing behind


def test_a_slow_but_steady_body_is_not_cut_off(limited: LocalServer) -> None:
    """Gaps shorter than the body timeout keep the request alive however long it takes in total."""
    token = limited.new_account().token
    data = b"s" * 12

    def body() -> Iterator[bytes]:
        for i in range(len(data)):
            time.sleep(TIMEOUT / 4)
            yield data[i : i + 1]

    with httpx.Client(base_url=limited.url, timeout=30, trust_env=False) as http:
        r = http.post("/2/files/upload", content=body(), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
            "Dropbox-API-Arg": json.dumps({"path": "/slow.bin"}), "Content-Length": str(len(data))})
        assert r.status_code == 200, r.text
        assert r.json()["size"] == len(data)


def _download_socket(server: LocalServer, token: str, path: str) -> socket.socket:
    """A raw connection that asked for `path` and has read only the first bytes of the answer."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server's buffers fill
    s.settimeout(30)
    s.connect(("127.0.0.1", server.port))
    s.sendall(f"POST /2/files/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
              f"Dropbox-API-Arg: {json.dumps({'path': path})}\r\n\r\n".encode())
    assert s.recv(12) == b"HTTP/1.1 200"
    return s


def _drain(s: socket.socket) -> tuple[int, bool]:
    """Read what is left: (bytes, whether the server closed the connection)."""
    got = 0
    s.settimeout(10)
    try:
        while chunk := s.recv(1 << 20):
            got += len(chunk)
    except (ConnectionResetError, TimeoutError) as e:
        return got, isinstance(e, ConnectionResetError)
    return got, True


@pytest.mark.parametrize("reader", ["reads nothing", "reads a byte at a time"])
def test_a_download_its_client_does_not_read_is_closed_after_the_send_timeout(limited: LocalServer,
                                                                              reader: str) -> None:
    token = limited.new_account().token
    size = 24 * 1024 * 1024  # far more than the socket buffers hold
    with httpx.Client(base_url=limited.url, timeout=60, trust_env=False) as http:
        Api(http, token).upload_ok("/big.bin", b"b" * size)
    s = _download_socket(limited, token, "/big.bin")
    try:
        started = time.monotonic()
        while time.monotonic() - started < TIMEOUT + 3:
            if reader != "reads nothing":
                s.recv(1)
            time.sleep(0.2)
        got, closed = _drain(s)
    finally:
        s.close()
    assert closed and got < size // 2, (got, closed)  # cut off, not served in full nor left hanging
    with httpx.Client(base_url=limited.url, timeout=10, trust_env=False) as http:  # and the server is fine
        assert Api(http, token).download_bytes("/big.bin") == b"b" * size


def test_a_slow_but_steady_download_is_not_cut_off(limited: LocalServer) -> None:
    """A client that keeps taking its response, however slowly overall, gets all of it."""
    token = limited.new_account().token
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB, read 128 KiB every 0.25 s: ~6 s, 3x the send timeout
    with httpx.Client(base_url=limited.url, timeout=60, trust_env=False) as http:
        Api(http, token).upload_ok("/steady.bin", data)
    s = _download_socket(limited, token, "/steady.bin")
    try:
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(1)
        body = bytearray()
        started = time.monotonic()
        while len(body) < len(data):
            chunk = s.recv(128 * 1024)
            assert chunk, f"closed after {len(body)} bytes"
            body += chunk
            time.sleep(0.25 * len(chunk) / (128 * 1024))
    finally:
        s.close()
    assert bytes(body) == data and time.monotonic() - started > TIMEOUT


def test_oversized_headers_and_rpc_bodies(limited: LocalServer, http: httpx.Client) -> None:
    api = Api(http, limited.new_account().token)
    # Large but under the cap: answered by the route as Dropbox would (the path is too long).
    r = api.content("files/upload", {"path": "/" + "a" * 500_000}, b"x")
    assert r.status_code in (400, 409), r.status_code
    # Past the 1 MiB header cap: 431 and the connection closes.
    with _status_or_closed(431) as check:
        check(api.content("files/upload", {"path": "/" + "a" * 1_100_000}, b"x"))
    # RPC bodies past 64 MiB are refused before they are parsed.
    r = api.rpc("files/get_metadata", raw=b'{"path": "/' + b"a" * (64 * 1024 * 1024) + b'"}')
    assert r.status_code == 400 and "too large" in r.text, r.text[:200]
    assert api.rpc("check/user", {"query": "still fine"}).status_code == 200


class _status_or_closed:
    def __init__(self, status: int) -> None:
        self.status = status

    def __enter__(self) -> _status_or_closed:
        return self

    def __call__(self, r: httpx.Response) -> None:
        assert r.status_code == self.status, r.status_code

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        # The server may close before the client finished sending: the refusal then shows as a broken connection.
        return isinstance(exc, httpx.TransportError)


def test_connection_cap_answers_503_then_recovers(limited: LocalServer, tmp_path: Path) -> None:
    token = limited.new_account().token
    idle = [_connect(limited) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        with httpx.Client(base_url=limited.url, timeout=10, trust_env=False) as http:
            r = http.post("/2/check/user", json={"query": "x"}, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 503, r.status_code
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    with httpx.Client(base_url=limited.url, timeout=10, trust_env=False) as http:
        r = http.post("/2/check/user", json={"query": "x"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
