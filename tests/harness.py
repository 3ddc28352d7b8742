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


_DATABASES: dict[Path, list[str]] = {}


def backend_args(data_dir: Path) -> list[str]:
    """`serve` flags of the metadata backend the tests run on: none for the embedded default; with
    LOCALBOX_TEST_BACKEND=postgres, a database made for this data dir (migrated, dropped at exit), so
    that every server started on the data dir (a restart, a second node) sees the same data."""
    if os.environ.get("LOCALBOX_TEST_BACKEND", "sqlite") != "postgres":
        return []
    key = data_dir.resolve()
    if key not in _DATABASES:
        import pg

        pg.require()
        url = pg.create_database()
        atexit.register(pg.drop_database, url)
        _DATABASES[key] = ["--database-url", url]
    return _DATABASES[key]


class LocalServer:
    """A `localbox serve` subprocess with its own data dir.  `https`: the server speaks HTTPS on its port
    (extra_args carry `--tls` or `--tls-cert`); `tls_port`: it also serves HTTPS on `self.tls_port`."""

    def __init__(self, data_dir: Path, extra_args: Sequence[str] = (), *, https: bool = False,
                 tls_port: bool = False) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        # LOCALBOX_TEST_BACKEND=postgres: the same tests on a fresh PostgreSQL database each (#5).
        if "--database-url" in self.extra_args:  # the admin CLI works on the same database (and blobs)
            self.backend_args = []
            for flag in ("--database-url", "--blob-url"):
                if flag in self.extra_args:
                    at = self.extra_args.index(flag)
                    self.backend_args += self.extra_args[at : at + 2]
        else:
            self.backend_args = backend_args(data_dir)
            self.extra_args += self.backend_args
        self.port = free_port()
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.tls_port = free_port() if tls_port else None
        self.https_url = f"https://127.0.0.1:{self.tls_port}" if tls_port else None
        if self.tls_port is not None:
            self.extra_args += ["--tls-port", str(self.tls_port)]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    # -- process control -------------------------------------------------------------
    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self._log_start = log.tell()  # a second server on the same data dir appends to the same log
        self.proc = subprocess.Popen(
            [*LOCALBOX, "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
             "--port", str(self.port), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        waiting = [p for p in (self.port, self.tls_port) if p is not None]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"localbox serve exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2):
                    waiting.pop(0)
                    if not waiting:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"localbox serve did not listen in time:\n{self.log()}")

    @property
    def ca_file(self) -> Path:
        """The local CA that `--tls` / `--tls-port` certificates are signed by."""
        return self.data_dir / "tls" / "ca.pem"

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def admin_token(self) -> str:
        """The admin token `serve` printed at its last start (or the --admin-token it was given)."""
        if "--admin-token" in self.extra_args:
            return self.extra_args[self.extra_args.index("--admin-token") + 1]
        with open(self.log_path, "rb") as f:
            f.seek(self._log_start)
            found = re.search(r"LOCALBOX_ADMIN_TOKEN=(\S+)", f.read().decode(errors="replace"))
        assert found, f"no admin token in the server log:\n{self.log()}"
        return found.group(1)

    def reset_account(self, email: str) -> None:
        """Forget the account and everything it owns (POST /admin/reset), as a test server can."""
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
    """Sends every https://<dropbox host>/... request to the local plain-HTTP server instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        _, _, rest = request.url.partition("://")
        _, _, path = rest.partition("/")
        request.url = f"{self.base_url}/{path}"
        return super().send(request, *args, **kwargs)


def local_session(base_url: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE / HTTPS_PROXY must not interfere
    s.mount("https://", _RewriteToLocal(base_url))
    return s


def make_sdk(server: LocalServer, token: str, **kwargs: Any) -> Any:
    import dropbox

    kwargs.setdefault("max_retries_on_error", 0)
    kwargs.setdefault("max_retries_on_rate_limit", 0)
    return dropbox.Dropbox(token, session=local_session(server.url), **kwargs)


@contextlib.contextmanager
def running_server(data_dir: Path, extra_args: Sequence[str] = (), **kwargs: bool) -> Iterator[LocalServer]:
    """A started `localbox serve` on `data_dir`, stopped when the block ends (kwargs: see LocalServer)."""
    srv = LocalServer(data_dir, extra_args, **kwargs)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
