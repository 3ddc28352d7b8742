"""The `localbox` command: serve, account create, token create.  The only place argv is read."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from localbox import __version__
from localbox.config import ConfigError, Settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="where metadata and file bytes live (default ./localbox-data; "
                                      "env LOCALBOX_DATA_DIR)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localbox", description="A self-hosted Dropbox API v2 server.")
    parser.add_argument("--version", action="version", version=f"localbox {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (embedded: SQLite + local folder)")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", help="port to listen on (default 8080)")
    serve.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.add_argument("--session-ttl", help="upload session lifetime, e.g. 7d (default), 3600s")
    serve.add_argument("--job-retention", help="how long finished batch results stay checkable (default 24h)")
    serve.add_argument("--max-session-size", help="largest file through a session, e.g. 2TiB, 350GB")
    serve.add_argument("--quota", help="space allocation reported by users/get_space_usage (default 2TiB)")
    serve.add_argument("--log-level", help="debug, info (default), warning, error")

    account = sub.add_parser("account", help="manage accounts")
    asub = account.add_subparsers(dest="action", required=True)
    create = asub.add_parser("create", help="create an account; prints its account id")
    create.add_argument("email")
    create.add_argument("--name", help='display name, "Given Surname"')
    _common(create)

    token = sub.add_parser("token", help="manage access tokens")
    tsub = token.add_subparsers(dest="action", required=True)
    tcreate = tsub.add_parser("create", help="create a bearer token; prints it on the last line")
    tcreate.add_argument("email")
    tcreate.add_argument("--scope", action="append", dest="scopes",
                         help="grant only this scope (repeatable); default: every scope localbox checks")
    _common(tcreate)
    return parser


_SETTING_FLAGS = ("data_dir", "host", "port", "tls_cert", "tls_key", "session_ttl", "job_retention",
                  "max_session_size", "quota", "log_level")


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    flags = {k: getattr(args, k, None) for k in _SETTING_FLAGS}
    try:
        settings = Settings.load(flags, os.environ)
    except ConfigError as e:
        sys.exit(f"localbox: {e}")
    if args.command == "serve":
        serve(settings)
    elif args.command == "account":
        _account_create(settings, args.email, args.name)
    elif args.command == "token":
        _token_create(settings, args.email, args.scopes)


def _account_create(settings: Settings, email: str, name: str | None) -> None:
    from localbox.services.accounts import AccountExists, AccountService
    from localbox.stores.sqlite import SqliteMetadataStore

    try:
        account = AccountService(SqliteMetadataStore(settings.database_path)).create_account(email, name)
    except AccountExists:
        sys.exit(f"localbox: an account with email {email} already exists")
    print(f"created account {email} (root namespace {account.root_namespace_id})", file=sys.stderr)
    print(account.account_id)


def _token_create(settings: Settings, email: str, scopes: list[str] | None) -> None:
    from localbox.services.accounts import ALL_SCOPES, AccountService, UnknownAccount
    from localbox.stores.sqlite import SqliteMetadataStore

    unknown = set(scopes or ()) - ALL_SCOPES
    if unknown:
        print(f"localbox: note: scope(s) not checked by any route yet: {', '.join(sorted(unknown))}",
              file=sys.stderr)
    try:
        token = AccountService(SqliteMetadataStore(settings.database_path)).create_token(email, scopes)
    except UnknownAccount:
        sys.exit(f"localbox: no account with email {email}; create it with `localbox account create {email}`")
    print(f"token for {email} with scopes: {' '.join(sorted(token.scopes))}", file=sys.stderr)
    print(token.token)


def _tune_malloc() -> None:
    """Re-exec once with glibc malloc tuned for ~256 KiB request chunks: about 2x upload throughput
    (bench/README.md).  Skipped when already set or when LOCALBOX_NO_MALLOC_TUNING is set."""
    if sys.platform != "linux" or "MALLOC_MMAP_THRESHOLD_" in os.environ or "LOCALBOX_NO_MALLOC_TUNING" in os.environ:
        return
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "268435456"}
    try:
        os.execve(sys.executable, [sys.executable, "-m", "localbox", *sys.argv[1:]], env)
    except OSError:
        return


def serve(settings: Settings) -> None:
    _tune_malloc()
    import uvicorn

    from localbox.app import create_app, open_backends

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    backends = open_backends(settings)
    app = create_app(settings, backends)
    scheme = "https" if settings.tls_cert else "http"
    print(f"localbox {__version__} serving the Dropbox API v2 at {scheme}://{settings.host}:{settings.port}/2/",
          flush=True)
    print(f"  backends: {backends.describe()}", flush=True)
    print(f"  get a token: localbox account create you@example.com --data-dir {settings.data_dir} && "
          f"localbox token create you@example.com --data-dir {settings.data_dir}", flush=True)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), access_log=False,
        http="httptools", loop="uvloop" if sys.platform != "win32" else "asyncio",
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        timeout_keep_alive=30,
    )
