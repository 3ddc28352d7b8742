"""The object store failing under a running server (the S3 counterpart of test_disk_full.py): S3 answering
500 InternalError, 503 SlowDown, or not answering at all.

A small HTTP proxy between localbox and moto's S3 server injects the fault.  While it lasts, uploads,
appends and downloads fail with a retryable 503 (Retry-After) within a bounded time, downloads before
any header is sent rather than as a cut stream; nothing committed refers to bytes the store does not
hold, no session moves past its acknowledged offset; once S3 answers again everything works, without
a restart.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _apiwire import Api, content_hash, describe
from harness import running_server
from reliability_backends import Backend

pytestmark = pytest.mark.reliability
RELIABILITY_BACKENDS = ("postgres-s3",)  # the local disk's faults: test_disk_full.py
MiB = 1024 * 1024
# botocore's bounds in localbox (stores/s3botocore.py): 3 attempts; a hung request waits 20 s each.
BOUND = {"500": 15.0, "503": 15.0, "hang": 90.0}
_ERRORS = {"500": ("InternalError", "We encountered an internal error. Please try again."),
           "503": ("SlowDown", "Please reduce your request rate.")}


class FaultProxy:
    """Forwards HTTP to `upstream` (moto), or, per `mode`, answers "500"/"503" or hangs ("hang")."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.mode = "pass"
        self.faulted = 0  # requests answered with a fault
        self.recovered = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                mode = proxy.mode
                if mode != "pass":
                    proxy.faulted += 1
                if mode == "hang":
                    proxy.recovered.wait(120)
                    self.close_connection = True
                    return
                if mode in _ERRORS:
                    code, message = _ERRORS[mode]
                    xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
                    self.send_response(int(mode))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    self.end_headers()
                    self.wfile.write(xml)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                    r = conn.getresponse()
                    data = r.read()
                finally:
                    conn.close()
                self.send_response_only(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", r.getheader("Content-Length", str(len(data))))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, mode: str) -> None:
        self.recovered.clear()
        self.mode = mode

    def recover(self) -> None:
        self.mode = "pass"
        self.recovered.set()

    def close(self) -> None:
        self.recover()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(backend: Backend) -> Iterator[FaultProxy]:
    assert backend.s3 is not None
    p = FaultProxy(backend.s3.endpoint)
    yield p
    p.close()


def _data(tag: str, size: int) -> bytes:
    import hashlib

    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def _unavailable(r: httpx.Response) -> None:
    """What Dropbox answers when its storage is failing: a retryable 503 with Retry-After."""
    assert r.status_code == 503, describe(r)
    assert r.headers.get("retry-after"), describe(r)


@pytest.mark.parametrize("fault", ["500", "503", "hang"])
def test_a_failing_object_store_fails_calls_retryably_and_loses_nothing(
    tmp_path: Path, backend: Backend, proxy: FaultProxy, fault: str,
) -> None:
    assert backend.s3 is not None and backend.database_url is not None
    args = ["--database-url", backend.database_url, "--blob-url", backend.s3.blob_url(proxy.url)]
    with running_server(tmp_path / "data", args) as server, \
            httpx.Client(base_url=server.url, timeout=180, trust_env=False) as http:
        a = Api(http, server.new_account().token)
        kept = {"/kept/big.bin": _data("big", 9 * MiB + 77), "/kept/small.txt": b"small"}
        for path, d in kept.items():
            a.upload_ok(path, d)
        head = _data("session", MiB + 5)
        sid = a.start_ok(head)  # a staged tail in S3

        proxy.fail(fault)
        attempts: dict[str, Callable[[Api], httpx.Response]] = {
            "upload": lambda c: c.content("files/upload", {"path": "/during/upload.bin"}, _data("up", 300_000)),
            "big upload": lambda c: c.content("files/upload", {"path": "/during/big.bin"}, _data("bu", 5 * MiB)),
            "append": lambda c: c.content("files/upload_session/append_v2",
                                          {"cursor": {"session_id": sid, "offset": len(head)}}, b"more"),
            "download": lambda c: c.download({"path": "/kept/big.bin"}),
            "range download": lambda c: c.download({"path": "/kept/big.bin"},
                                                   headers={"Range": f"bytes={5 * MiB}-{5 * MiB + 9}"}),
        }
        answers: dict[str, tuple[float, httpx.Response | BaseException]] = {}

        def attempt(name: str) -> None:
            started = time.monotonic()
            try:
                with httpx.Client(base_url=server.url, timeout=180, trust_env=False) as h:
                    r: httpx.Response | BaseException = attempts[name](Api(h, a.token))
            except Exception as e:  # a cut connection: reported below
                r = e
            answers[name] = (time.monotonic() - started, r)

        threads = [threading.Thread(target=attempt, args=(name,)) for name in attempts]
        for t in threads:  # at once: a hung store costs its bound once, not per call
            t.start()
        for t in threads:
            t.join(BOUND[fault] + 60)
        assert proxy.faulted > 0
        for name in attempts:
            took, r = answers[name]
            assert isinstance(r, httpx.Response), f"{name}: {r!r}"
            _unavailable(r)
            assert took < BOUND[fault], f"{name} took {took:.1f} s"

        proxy.recover()
        # Nothing committed refers to missing bytes; the failed calls left nothing.
        listed = a.rpc("files/list_folder", {"path": "", "recursive": True}).json()["entries"]
        files = {e["path_lower"]: e for e in listed if e[".tag"] == "file"}
        assert sorted(files) == sorted(kept), sorted(files)
        for path, d in kept.items():
            assert files[path]["content_hash"] == content_hash(d)
            assert a.download_bytes(path) == d
        # Everything works again: the session resumes at its acknowledged offset.
        again = _data("again", 4 * MiB + 3)
        assert a.upload_ok("/after/again.bin", again)["size"] == len(again)
        a.append_ok(sid, len(head), b"more")
        md = a.finish_ok(sid, len(head) + 4, "/after/session.bin")
        assert md["content_hash"] == content_hash(head + b"more")
        assert a.download_bytes("/after/again.bin") == again
        assert a.download_bytes("/after/session.bin") == head + b"more"
        errors = [line for line in server.log_path.read_text(errors="replace").splitlines() if " ERROR " in line]
        assert not errors, errors[:5]  # a 500 (or any unexpected failure) is logged as an ERROR
        print(f"\nS3 fault {fault}: " + ", ".join(f"{n} 503 in {answers[n][0]:.1f} s" for n in attempts)
              + f"; {proxy.faulted} S3 requests faulted")


def test_the_proxy_passes_everything_through(backend: Backend, proxy: FaultProxy) -> None:
    """The fault proxy itself is transparent when no fault is set (else the test above proves nothing)."""
    import botocore.session

    assert backend.s3 is not None
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=proxy.url, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test")
    client.put_object(Bucket=backend.s3.bucket, Key="probe/x", Body=b"through the proxy")
    assert client.head_object(Bucket=backend.s3.bucket, Key="probe/x")["ContentLength"] == 17
    got = client.get_object(Bucket=backend.s3.bucket, Key="probe/x", Range="bytes=8-10")["Body"].read()
    assert got == b"the"
    client.delete_object(Bucket=backend.s3.bucket, Key="probe/x")
    assert json.dumps(client.list_objects_v2(Bucket=backend.s3.bucket, Prefix="probe/").get("Contents", [])) == "[]"
