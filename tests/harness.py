"""Test harness shared by every tier: a real `localbox serve` process and SDK clients bound to it."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

LOCALBOX = [sys.executable, "-m", "localbox"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Account:
    email: str
    account_id: str
    token: str


BACKENDS = ("sqlite", "postgres", "postgres-s3")


def backend_name() -> str:
    """LOCALBOX_TEST_BACKEND: sqlite (the embedded default), postgres (a PostgreSQL database per data
    dir, blobs in the data dir) or postgres-s3 (that database plus an S3 prefix per data dir on one moto
    server per test session) (#5)."""
    backend = os.environ.get("LOCALBOX_TEST_BACKEND", "sqlite")
    if backend not in BACKENDS:
        raise RuntimeError(f"LOCALBOX_TEST_BACKEND={backend!r}: use one of {', '.join(BACKENDS)}")
    return backend


def node_count() -> int:
    """LOCALBOX_TEST_NODES: how many `localbox serve` processes a LocalServer runs on its shared stores
    (more than one needs a shared database: LOCALBOX_TEST_BACKEND=postgres or postgres-s3)."""
    nodes = int(os.environ.get("LOCALBOX_TEST_NODES", "1"))
    if nodes > 1 and backend_name() == "sqlite":
        raise RuntimeError("LOCALBOX_TEST_NODES > 1 needs LOCALBOX_TEST_BACKEND=postgres or postgres-s3")
    return max(nodes, 1)


_BACKEND_ARGS: dict[Path, list[str]] = {}


@dataclass
class _Moto:
    proc: subprocess.Popen[bytes]
    endpoint: str
    bucket: str


_MOTO: list[_Moto] = []


def _moto() -> _Moto:
    """One moto S3 server per test session, in its own process (three nodes' traffic must not compete
    with the tests for this process's GIL), with one bucket; stopped at exit."""
    if _MOTO:
        return _MOTO[0]
    # Credentials come from the standard AWS chain, as in production (servers started by the tests
    # inherit them); moto accepts any.
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(key, value)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(_stop, proc)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError("moto's S3 server exited at start (is moto[server] installed?)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("moto's S3 server did not listen in time") from None
            time.sleep(0.05)
    bucket = f"localbox-tests-{secrets.token_hex(4)}"
    _s3_client(endpoint).create_bucket(Bucket=bucket)
    _MOTO.append(_Moto(proc, endpoint, bucket))
    return _MOTO[0]


def _s3_client(endpoint: str) -> Any:
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def backend_args(data_dir: Path) -> list[str]:
    """`serve` flags of the backends the tests run on (see backend_name): none for the embedded default;
    otherwise a database (migrated, dropped at exit) and, for postgres-s3, an S3 prefix made for this data
    dir, so that every server started on the data dir (a restart, a second node) sees the same data."""
    backend = backend_name()
    if backend == "sqlite":
        return []
    key = data_dir.resolve()
    if key not in _BACKEND_ARGS:
        import pg

        pg.require()
        url = pg.create_database()
        atexit.register(pg.drop_database, url)
        args = ["--database-url", url]
        if backend == "postgres-s3":
            moto = _moto()
            prefix = f"{data_dir.name}-{secrets.token_hex(4)}"
            args += ["--blob-url", f"s3://{moto.bucket}/{prefix}?endpoint_url={moto.endpoint}&region=us-east-1"]
        _BACKEND_ARGS[key] = args
    return _BACKEND_ARGS[key]


def stored_blob_bytes(blob_url: str) -> int:
    """Bytes held by the blob store at `blob_url` (a file:// folder or an s3:// prefix), staging included."""
    if blob_url.startswith("s3://"):
        bucket, _, rest = blob_url[len("s3://"):].partition("/")
        prefix, _, query = rest.partition("?")
        prefix = prefix.rstrip("/") + "/"  # the store's own keys are under PREFIX/, not other prefixes
        endpoint = dict(part.split("=", 1) for part in query.split("&"))["endpoint_url"]
        pages = _s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sum(int(o["Size"]) for page in pages for o in page.get("Contents", ()))
    root = Path(blob_url[len("file://"):])
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# base URL of node 0 -> every node's base URL, for local_session() given a multi-node server's `url`.
_NODE_URLS: dict[str, list[str]] = {}


class LocalServer:
    """`localbox serve` on a data dir.  `https`: the server speaks HTTPS on its port (extra_args carry
    `--tls` or `--tls-cert`); `tls_port`: it also serves HTTPS on `self.tls_port`.

    With LOCALBOX_TEST_NODES=N (and a shared database, see backend_name) it is N processes on the same
    data dir and stores, each on its own port: `url`/`port`/`proc`/`log()` are node 0's, `urls` all of
    them; make_sdk() and local_session(server.url) spread requests round-robin over every node (#5).
    start/stop/restart act on every node.  `nodes=1` pins a server to one process (state that lives in a
    process: --memory stores)."""

    def __init__(self, data_dir: Path, extra_args: Sequence[str] = (), *, https: bool = False,
                 tls_port: bool = False, nodes: int | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        memory = "--memory" in self.extra_args  # in-process stores: nothing to share, nothing to spread
        # LOCALBOX_TEST_BACKEND=postgres(-s3): the same tests on a fresh database (and S3 prefix) each (#5).
        if "--database-url" in self.extra_args:  # the admin CLI works on the same database (and blobs)
            self.backend_args = []
            for flag in ("--database-url", "--blob-url"):
                if flag in self.extra_args:
                    at = self.extra_args.index(flag)
                    self.backend_args += self.extra_args[at : at + 2]
        elif memory:
            self.backend_args = []
        else:
            chosen = backend_args(data_dir)
            self.backend_args = []
            for flag, value in zip(chosen[::2], chosen[1::2], strict=True):
                if flag not in self.extra_args:  # a test's own --blob-url wins
                    self.extra_args += [flag, value]
                at = self.extra_args.index(flag)
                self.backend_args += self.extra_args[at : at + 2]
        self.nodes = 1 if memory else (nodes if nodes is not None else node_count())
        self.blob_url = (self.extra_args[self.extra_args.index("--blob-url") + 1]
                         if "--blob-url" in self.extra_args else f"file://{data_dir / 'blobs'}")
        scheme = "https" if https else "http"
        self.ports = [free_port() for _ in range(self.nodes)]
        self.tls_ports = [free_port() for _ in range(self.nodes)] if tls_port else []
        self.port = self.ports[0]
        self.urls = [f"{scheme}://127.0.0.1:{p}" for p in self.ports]
        self.url = self.urls[0]
        self.tls_port = self.tls_ports[0] if tls_port else None
        self.https_url = f"https://127.0.0.1:{self.tls_port}" if tls_port else None
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * self.nodes
        self._log_starts = [0] * self.nodes
        self.log_paths = [data_dir.parent / f"{data_dir.name}-server.log",
                          *(data_dir.parent / f"{data_dir.name}-node{i}-server.log" for i in range(1, self.nodes))]
        self.log_path = self.log_paths[0]
        if self.nodes > 1:
            _NODE_URLS[self.url] = self.urls

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """Node 0's process."""
        return self.procs[0]

    # -- process control -------------------------------------------------------------
    def _spawn(self, i: int) -> None:
        log = open(self.log_paths[i], "ab")  # noqa: SIM115 - the child owns it
        self._log_starts[i] = log.tell()  # a second server on the same data dir appends to the same log
        tls = ["--tls-port", str(self.tls_ports[i])] if self.tls_ports else []
        self.procs[i] = subprocess.Popen(
            [*LOCALBOX, "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
             "--port", str(self.ports[i]), *self.extra_args, *tls],
            stdout=log, stderr=subprocess.STDOUT,
        )

    def _wait_listening(self, i: int, deadline: float) -> None:
        proc = self.procs[i]
        assert proc is not None
        waiting = [self.ports[i], *self.tls_ports[i : i + 1]]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"localbox serve exited early:\n{self.log(i)}")
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2):
                    waiting.pop(0)
                    if not waiting:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"localbox serve did not listen in time:\n{self.log(i)}")

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Node 0 first: it makes what the others then share (the --tls certificate under the data dir).
        self._spawn(0)
        self._wait_listening(0, time.monotonic() + 30)
        for i in range(1, self.nodes):
            self._spawn(i)
        deadline = time.monotonic() + 30
        for i in range(1, self.nodes):
            self._wait_listening(i, deadline)

    @property
    def ca_file(self) -> Path:
        """The local CA that `--tls` / `--tls-port` certificates are signed by."""
        return self.data_dir / "tls" / "ca.pem"

    def stop(self, kill: bool = False) -> None:
        running = [p for p in self.procs if p is not None]
        for proc in running:  # every node at once: kill=True is a crash of the whole deployment
            if kill:
                proc.kill()
            else:
                proc.terminate()
        for proc in running:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = [None] * self.nodes

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log(self, node: int = 0) -> str:
        """The end of one node's log (node 0's by default; see logs())."""
        try:
            return self.log_paths[node].read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def logs(self) -> str:
        """The end of every node's log."""
        if self.nodes == 1:
            return self.log()
        return "\n".join(f"--- node {i} ---\n{self.log(i)}" for i in range(self.nodes))

    def stored_blob_bytes(self) -> int:
        """Bytes in this server's blob store (its folder or S3 prefix), staging included."""
        return stored_blob_bytes(self.blob_url)

    def admin_token(self) -> str:
        """The admin token node 0's `serve` printed at its last start (or the --admin-token it was given;
        each node generates its own)."""
        if "--admin-token" in self.extra_args:
            return self.extra_args[self.extra_args.index("--admin-token") + 1]
        with open(self.log_path, "rb") as f:
            f.seek(self._log_starts[0])
            found = re.search(r"LOCALBOX_ADMIN_TOKEN=(\S+)", f.read().decode(errors="replace"))
        assert found, f"no admin token in the server log:\n{self.log()}"
        return found.group(1)

    def reset_account(self, email: str) -> None:
        """Forget the account and everything it owns (POST /admin/reset, on node 0: the stores are shared),
        as a test server can."""
        r = requests.post(f"{self.url}/admin/reset", json={"account": email}, timeout=30,
                          headers={"Authorization": f"Bearer {self.admin_token()}"})
        assert r.status_code == 200, r.text

    # -- admin CLI -------------------------------------------------------------------
    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [*LOCALBOX, *args, "--data-dir", str(self.data_dir), *self.backend_args],
            capture_output=True, text=True, timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"localbox {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
        return out.stdout

    def new_account(self, scopes: Sequence[str] | None = None, name: str = "Test User") -> Account:
        email = f"user-{secrets.token_hex(4)}@example.com"
        account_id = self.cli("account", "create", email, "--name", name).strip().splitlines()[-1]
        args = ["token", "create", email]
        for s in scopes or ():
            args += ["--scope", s]
        token = self.cli(*args).strip().splitlines()[-1]
        return Account(email=email, account_id=account_id, token=token)

    def new_token(self, email: str, scopes: Sequence[str] | None = None) -> str:
        args = ["token", "create", email]
        for s in scopes or ():
            args += ["--scope", s]
        return self.cli(*args).strip().splitlines()[-1]


class _RewriteToLocal(HTTPAdapter):
    """Sends every https://<dropbox host>/... request to a local plain-HTTP server instead: to the next of
    `base_urls` on each request (round-robin per request, not per connection, like a load balancer
    without sticky sessions; #5)."""

    def __init__(self, base_urls: Sequence[str]) -> None:
        super().__init__()
        self.base_urls = list(base_urls)
        self.turn = 0
        self.lock = threading.Lock()

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        _, _, rest = request.url.partition("://")
        _, _, path = rest.partition("/")
        with self.lock:
            base = self.base_urls[self.turn % len(self.base_urls)]
            self.turn += 1
        request.url = f"{base}/{path}"
        return super().send(request, *args, **kwargs)


def local_session(base_url: str, *, spread: bool = True) -> requests.Session:
    """A requests session whose https://<dropbox host>/ requests go to `base_url`: to every node in turn
    when `base_url` is a multi-node LocalServer's `url`, unless `spread` is False (a test of state that
    each node keeps for itself, such as the per-token rate limiter's buckets)."""
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE / HTTPS_PROXY must not interfere
    s.mount("https://", _RewriteToLocal(_NODE_URLS.get(base_url, [base_url]) if spread else [base_url]))
    return s


def make_sdk(server: LocalServer, token: str, **kwargs: Any) -> Any:
    import dropbox

    kwargs.setdefault("max_retries_on_error", 0)
    kwargs.setdefault("max_retries_on_rate_limit", 0)
    return dropbox.Dropbox(token, session=local_session(server.url), **kwargs)


@contextlib.contextmanager
def running_server(data_dir: Path, extra_args: Sequence[str] = (), **kwargs: Any) -> Iterator[LocalServer]:
    """A started `localbox serve` on `data_dir`, stopped when the block ends (kwargs: see LocalServer)."""
    srv = LocalServer(data_dir, extra_args, **kwargs)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
