"""Helpers of the real-client tier: `localbox serve --tls`, rclone bound to it, node, content hashes.

Imported by conftest.py and the tests of this directory (conftest.py puts the directory on sys.path).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from connect_proxy import ConnectProxy
from harness import Account, LocalServer, running_server
from requests.adapters import HTTPAdapter

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"
REPO = HERE.parents[1]
# Variables of this machine that would redirect or re-trust a client behind our back.
_SCRUBBED = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
             "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
             "NODE_EXTRA_CA_CERTS")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(extra)
    return env


def dropbox_content_hash(data: bytes) -> str:
    """Dropbox's content_hash: SHA-256 over the SHA-256 of each 4 MiB block (computed here, not by localbox)."""
    block = 4 * 1024 * 1024
    digests = b"".join(hashlib.sha256(data[i:i + block]).digest() for i in range(0, len(data), block))
    return hashlib.sha256(digests).hexdigest()


def require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed ({hint}); set LOCALBOX_SKIP_CLIENTS=1 to skip this tier on purpose")
    return path


@dataclass
class TlsServer:
    server: LocalServer
    ca_file: Path
    proxy: ConnectProxy

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"


@contextlib.contextmanager
def tls_server(where: Path) -> Iterator[TlsServer]:
    """`localbox serve --tls` (its own CA and certificate, made once in the data dir) + a CONNECT proxy to it."""
    with running_server(where / "data", ["--tls"]) as srv, ConnectProxy(srv.port) as proxy:
        ca_file = Path(srv.cli("ca").strip())  # the user's way to find the CA to trust
        yield TlsServer(srv, ca_file, proxy)
        assert not proxy.refused, f"a client asked the proxy for a non-Dropbox host: {proxy.refused}"


class _ToTlsServer(HTTPAdapter):
    """Sends https://<dropbox host>/... to the local HTTPS port (the certificate is checked against our CA)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        request.url = f"{self.base_url}/{request.url.split('/', 3)[3]}"
        return super().send(request, *args, **kwargs)


def https_sdk(tls: TlsServer, token: str) -> Any:
    """The Python SDK over the server's HTTPS port, for server-side checks."""
    import dropbox

    s = requests.Session()
    s.trust_env = False
    s.verify = str(tls.ca_file)
    s.mount("https://", _ToTlsServer(tls.base_url))
    return dropbox.Dropbox(token, session=s, max_retries_on_error=0, max_retries_on_rate_limit=0)


def rclone_env(token: str, ca_file: Path, proxy_url: str, home: Path) -> dict[str, str]:
    """A remote `dbx:` defined only by environment variables: no config file, no OAuth."""
    return clean_env(
        RCLONE_CONFIG="/dev/null",
        RCLONE_CONFIG_DBX_TYPE="dropbox",
        # An expiry of Go's zero time means "never expires": rclone never tries to refresh it.
        RCLONE_CONFIG_DBX_TOKEN=json.dumps(
            {"access_token": token, "token_type": "bearer", "expiry": "0001-01-01T00:00:00Z"}),
        RCLONE_CA_CERT=str(ca_file),
        RCLONE_CACHE_DIR=str(home / "cache"),
        HTTPS_PROXY=proxy_url,
        HOME=str(home),
    )


class Rclone:
    """Debian's rclone, remote `dbx:`, reaching the server through the CONNECT proxy."""

    def __init__(self, tls: TlsServer, token: str, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.env = rclone_env(token, tls.ca_file, tls.proxy.url, home)

    def _run(self, args: Sequence[str], check: bool, timeout: float) -> subprocess.CompletedProcess[bytes]:
        # --retries 1: a failure on the first attempt must fail the test, not be papered over by a re-sync.
        cmd = ["rclone", "--retries", "1", *args]
        out = subprocess.run(cmd, capture_output=True, env=self.env, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {out.returncode}\n--- stderr\n{out.stderr.decode(errors='replace')[-6000:]}"
                f"\n--- server log\n{self.tls.server.log()[-3000:]}")
        return out

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        out = self._run(args, check, timeout)
        return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(), out.stderr.decode())

    def run_bytes(self, *args: str) -> bytes:
        return self._run(args, True, 180).stdout

    def lsjson(self, *args: str) -> list[dict[str, Any]]:
        return json.loads(self.run("lsjson", *args).stdout)  # type: ignore[no-any-return]


@dataclass
class Client:
    account: Account
    rclone: Rclone
    dbx: Any  # the Python SDK over HTTPS


def run_node(script: Path, env: dict[str, str], args: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    require("node", "apt-get install -y nodejs npm")
    if not (JS_DIR / "node_modules" / "dropbox").is_dir():
        pytest.fail(f"the JS SDK is not installed: run `npm ci` in {JS_DIR} (.ci/run does it); "
                    "set LOCALBOX_SKIP_CLIENTS=1 to skip this tier on purpose")
    return subprocess.run(["node", str(script), *args], capture_output=True, text=True, env=env, timeout=120,
                          cwd=JS_DIR)
