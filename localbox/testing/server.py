"""An in-memory localbox server inside the test process (a thread with its own event loop), with one
account and a fixed full-scope token, and the admin API at hand for faults, resets and the log."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any


class AdminError(RuntimeError):
    """The admin API refused a request (a bad fault, an unknown account...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"localbox admin API: HTTP {status}: {message}")
        self.status = status


class AdminClient:
    """The admin API of a running localbox (also what `localbox faults|reset|requests` use)."""

    def __init__(self, url: str, admin_token: str) -> None:
        self.url = url.rstrip("/")
        self.admin_token = admin_token

    def call(self, method: str, path: str, body: Any = None, timeout: float = 90) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"})
        # No proxies: the server is local, and HTTP(S)_PROXY must not capture the admin token.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            with suppress(ValueError, AttributeError):
                text = json.loads(text).get("error", text)
            raise AdminError(e.code, text) from None

    def add_fault(self, kind: str, *, route: str | None = None, account: str | None = None,
                  path: str | None = None, probability: float | None = None, times: int | None = None,
                  after: int | None = None, seed: int | None = None, **params: Any) -> dict[str, Any]:
        """Add a fault rule; returns it (with its `id`).  `params` are the kind's parameters."""
        rule: dict[str, Any] = {"kind": kind, "params": params}
        for name, value in (("route", route), ("account", account), ("path", path), ("probability", probability),
                            ("times", times), ("after", after), ("seed", seed)):
            if value is not None:
                rule[name] = value
        result: dict[str, Any] = self.call("POST", "/admin/faults", rule)
        return result

    def faults(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/admin/faults")["faults"])

    def fault(self, rule_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/admin/faults/{rule_id}")
        return result

    def delete_fault(self, rule_id: str) -> None:
        self.call("DELETE", f"/admin/faults/{rule_id}")

    def clear_faults(self) -> int:
        return int(self.call("DELETE", "/admin/faults")["deleted"])

    def reset(self, account: str | None = None, *, seed: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {} if account is not None or seed else {"seed": False}
        if account is not None:
            body["account"] = account
        result: dict[str, Any] = self.call("POST", "/admin/reset", body)
        return result

    def requests(self, since: int = 0, wait: float = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The request log after sequence number `since` (waiting up to `wait` s for a first entry)."""
        return list(self.call("GET", f"/admin/requests?since={since}&wait={wait}&limit={limit}",
                              timeout=wait + 30)["requests"])

    def add_account(self, email: str, **fields: Any) -> dict[str, Any]:
        """A new account (name, quota, tokens, folders, files as in a seed file); returns its
        `account_id` and `tokens` (one full-scope token unless `tokens` is given)."""
        result: dict[str, Any] = self.call("POST", "/admin/accounts", {"email": email, **fields})
        return result


def _rewriting_session(base_url: str) -> Any:
    """A requests session that sends the SDK's https://api.dropboxapi.com/... calls to `base_url`
    (the SDK builds https URLs from hosts it reads once, at import)."""
    import requests
    from requests.adapters import HTTPAdapter

    class _Rewrite(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            _, _, rest = request.url.partition("://")
            request.url = f"{base_url}/{rest.partition('/')[2]}"
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE / HTTPS_PROXY must not interfere
    session.mount("https://", _Rewrite())
    session.mount("http://", _Rewrite())
    return session


class LocalboxServer(AdminClient):
    """A localbox serving from memory on a free loopback port.  `url`, `token` (full scope, for
    `email`), `admin_token`; the admin calls of AdminClient; `client()` for an official SDK client.

    After `reset()` the server holds its seed again: the same account, with the same token."""

    def __init__(self, *, email: str = "test@localbox.test", token: str | None = None,
                 admin_token: str | None = None, seed: Mapping[str, Any] | None = None,
                 host: str = "127.0.0.1", port: int = 0, **settings: Any) -> None:
        super().__init__("", admin_token or "lbadm-" + secrets.token_urlsafe(24))
        self.email = email
        self.token = token or "sl.localbox-test-" + secrets.token_urlsafe(24)
        self.seed = dict(seed) if seed is not None else {"accounts": [{"email": email, "name": "Test User",
                                                                       "tokens": [self.token]}]}
        self.host = host
        self.port = port
        self.settings = settings  # more Settings fields, e.g. session_ttl=60.0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifecycle
    def start(self, timeout: float = 30) -> LocalboxServer:
        import uvicorn

        from localbox.app import create_app
        from localbox.config import Settings
        from localbox.services.seed import parse_seed

        settings = Settings(memory=True, admin_token=self.admin_token, host=self.host, **self.settings)
        app = create_app(settings, seed=parse_seed(self.seed, Path.cwd()))
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, loop="asyncio",
                                http="httptools", timeout_keep_alive=30)
        self._server = uvicorn.Server(config)

        def run() -> None:
            try:
                asyncio.run(self._server.serve(sockets=[sock]))
            except BaseException as e:  # reported by start() or stop()
                self._error = e
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"localbox-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"localbox did not start: {self._error!r}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = self._thread = None

    def __enter__(self) -> LocalboxServer:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients
    def client(self, token: str | None = None, **kwargs: Any) -> Any:
        """An official SDK `dropbox.Dropbox` for this server (default: the seeded account's token).
        kwargs go to dropbox.Dropbox, e.g. max_retries_on_rate_limit=3."""
        import dropbox

        return dropbox.Dropbox(token or self.token, session=_rewriting_session(self.url), **kwargs)


@contextmanager
def serve(**kwargs: Any) -> Iterator[LocalboxServer]:
    """`with localbox.testing.serve() as server:` a LocalboxServer for the block (kwargs: its options)."""
    server = LocalboxServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
