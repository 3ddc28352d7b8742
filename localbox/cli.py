"""The `localbox` command: serve, ca, account create, token create.  The only place argv is read."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from localbox import __version__, cli_admin, cli_client, cli_team
from localbox.config import ConfigError, Settings, parse_size
from localbox.observability.logs import configure_logging

if TYPE_CHECKING:
    from localbox.serving import Listener


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="where metadata and file bytes live (default ./localbox-data; "
                                      "env LOCALBOX_DATA_DIR)")
    p.add_argument("--database-url", help="metadata database: sqlite:///PATH (default <data-dir>/metadata.sqlite3) "
                                          "or postgresql://USER@HOST/DB (env LOCALBOX_DATABASE_URL)")
    p.add_argument("--blob-url", help="file bytes: file:///PATH (default <data-dir>/blobs) or "
                                      "s3://BUCKET/PREFIX?endpoint_url=...&region=... (env LOCALBOX_BLOB_URL)")


def _gc_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gc-grace", help="keep unreferenced blocks this long after their last use (default 1h)")
    p.add_argument("--revision-retention",
                   help="keep replaced or deleted file versions restorable this long (default 30d)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localbox", description="A self-hosted Dropbox API v2 server.")
    parser.add_argument("--version", action="version", version=f"localbox {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (embedded: SQLite + local folder)")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", help="port to listen on (default 8080)")
    serve.add_argument("--tls", action="store_true", default=None,
                       help="serve HTTPS with a certificate from a local CA made once in <data-dir>/tls "
                            "(env LOCALBOX_TLS=1); `localbox ca` prints the CA file to trust")
    serve.add_argument("--tls-port", help="also serve HTTPS on this port, plain HTTP staying on --port")
    serve.add_argument("--tls-name", action="append", dest="tls_names",
                       help="another host name or IP address for the generated certificate (repeatable; "
                            "env LOCALBOX_TLS_NAMES, comma-separated)")
    serve.add_argument("--tls-cert", help="your own PEM certificate for HTTPS (instead of the generated one)")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.add_argument("--session-ttl", help="upload session lifetime, e.g. 7d (default), 3600s")
    serve.add_argument("--job-retention", help="how long finished batch results stay checkable (default 24h)")
    serve.add_argument("--max-session-size", help="largest file through a session, e.g. 2TiB, 350GB")
    serve.add_argument("--quota", help="space allocation reported by users/get_space_usage (default 2TiB)")
    serve.add_argument("--log-level", help="debug, info (default), warning, error")
    serve.add_argument("--log-format", choices=("text", "json"),
                       help="text (default) or json: one JSON object per line, each with the request id")
    _gc_flags(serve)
    serve.add_argument("--gc-interval", help="how often garbage collection runs (default 15m)")
    serve.add_argument("--memory", action="store_true", default=None,
                       help="keep everything in memory, nothing on disk (throwaway test servers; "
                            "env LOCALBOX_MEMORY=1)")
    serve.add_argument("--seed", help="accounts, tokens, folders, files and teams to create at start and after a reset "
                                      "(JSON, or YAML with PyYAML; see README)")
    serve.add_argument("--admin-token", help="token of the admin API under /admin/ (faults, reset, request log); "
                                             "default: generated and printed (env LOCALBOX_ADMIN_TOKEN)")
    serve.add_argument("--request-log-size", help="how many calls the request log keeps (default 2000)")
    serve.add_argument("--write-wait", help="longest a commit waits for its namespace before it gets "
                                            "too_many_write_operations, e.g. 0.5s, 10s (default)")
    serve.add_argument("--max-open-sessions", help="open upload sessions per account before 429 (default 10000)")
    serve.add_argument("--max-pending-jobs", help="pending batch jobs per account before 429 (default 1000)")
    serve.add_argument("--header-timeout", help="close a connection whose request headers take longer (default 20s)")
    serve.add_argument("--body-timeout", help="close a connection silent this long inside a request body (default 60s)")
    serve.add_argument("--send-timeout", help="close a connection whose client takes none of its response for this "
                                              "long (a download nobody reads; default 3m)")
    serve.add_argument("--max-connections", help="open connections before new requests get 503 (default 1000)")

    account = sub.add_parser("account", help="manage accounts")
    asub = account.add_subparsers(dest="action", required=True)
    create = asub.add_parser("create", help="create an account; prints its account id")
    create.add_argument("email", help="the new account's email address (its login)")
    create.add_argument("--name", help='display name, "Given Surname"')
    create.add_argument("--quota", dest="account_quota",
                        help="this account's space allocation, e.g. 10GiB (default: serve's --quota)")
    _common(create)

    ca = sub.add_parser("ca", help="print the path of the local CA certificate that --tls uses (made if missing)")
    _common(ca)

    gc = sub.add_parser("gc", help="one garbage collection pass now (safe while a server runs)")
    _common(gc)
    _gc_flags(gc)

    token = sub.add_parser("token", help="manage access tokens")
    tsub = token.add_subparsers(dest="action", required=True)
    tcreate = tsub.add_parser("create", help="create a bearer token; prints it on the last line")
    tcreate.add_argument("email", nargs="?", help="the account (omit with --team)")
    tcreate.add_argument("--scope", action="append", dest="scopes",
                         help="grant only this scope (repeatable); default: every scope localbox checks")
    tcreate.add_argument("--team", help="a team token (as a team-linked app holds) for this team instead")
    tcreate.add_argument("--rate-limit", help="allow at most this many requests, e.g. 10/s (default: no limit)")
    _common(tcreate)
    tlist = tsub.add_parser("list", help="list an account's tokens: id, prefix, scopes, created (no secrets)")
    tlist.add_argument("email", help="the account")
    _common(tlist)
    trevoke = tsub.add_parser("revoke", help="revoke a token at once (by the id `token list` shows, or the token)")
    trevoke.add_argument("email", help="the account")
    trevoke.add_argument("token", nargs="?", help="a token id from `token list`, or the token itself")
    trevoke.add_argument("--all", action="store_true", help="revoke every token of the account")
    _common(trevoke)
    migrate = sub.add_parser("migrate", help="bring the metadata database to this localbox's schema (Alembic)")
    _common(migrate)
    cli_team.add_parsers(sub, _common)
    cli_admin.add_parsers(sub, _common)
    cli_client.add_parsers(sub)
    return parser


_SETTING_FLAGS = ("data_dir", "database_url", "blob_url", "host", "port",  # (backend URLs: #5)
                  "tls_cert", "tls_key", "tls", "tls_port", "tls_names",
                  "session_ttl", "job_retention", "max_session_size", "quota", "log_level", "log_format",
                  "gc_interval", "gc_grace", "revision_retention", "memory", "seed", "admin_token",
                  "request_log_size", "max_open_sessions", "max_pending_jobs",
                  "header_timeout", "body_timeout", "send_timeout", "max_connections",
                  "write_wait")


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if cli_client.handles(args.command):  # upload/download/ls talk HTTP: no server settings apply
        cli_client.run(args)
    flags = {k: getattr(args, k, None) for k in _SETTING_FLAGS}
    if flags["tls_names"] is not None:
        flags["tls_names"] = ",".join(flags["tls_names"])
    try:
        settings = Settings.load(flags, os.environ)
    except ConfigError as e:
        sys.exit(f"localbox: {e}")
    if args.command == "serve":
        serve(settings)
    elif args.command == "migrate":
        _migrate(settings)
    elif cli_admin.handles(args.command):
        cli_admin.run(settings, args)
    elif args.command == "account":
        _account_create(settings, args.email, args.name, args.account_quota)
    elif args.command == "token" and args.action == "create":
        _token_create_any(settings, args)
    elif args.command == "team":
        cli_team.run(settings, args)
    elif args.command == "token" and args.action == "list":
        _token_list(settings, args.email)
    elif args.command == "token":
        _token_revoke(settings, args.email, args.token, args.all)
    elif args.command == "ca":
        _print_ca(settings)
    elif args.command == "gc":
        _gc(settings)


def _migrate(settings: Settings) -> None:
    from localbox.backends import BackendError, database_url, describe, migrate
    from localbox.domain.errors import StoreUnavailable
    from localbox.stores.schema_head import SchemaOutdated

    url = database_url(settings)
    try:
        before, after = migrate(url)
    except (BackendError, StoreUnavailable, SchemaOutdated) as e:
        sys.exit(f"localbox: {e}")
    if before == after:
        print(f"{describe(url)}: schema already at revision {after}")
    else:
        print(f"{describe(url)}: schema migrated from {before or 'nothing'} to revision {after}")


def metadata_store(settings: Settings) -> Any:
    """The metadata store the admin commands work on: the same URL as `serve` (#5)."""
    from localbox.backends import BackendError, database_url, open_metadata
    from localbox.domain.errors import StoreUnavailable
    from localbox.stores.schema_head import SchemaOutdated

    try:
        return open_metadata(database_url(settings))
    except (BackendError, StoreUnavailable, SchemaOutdated) as e:
        sys.exit(f"localbox: {e}")


def _gc(settings: Settings) -> None:
    import asyncio

    from localbox.app import build_gc, open_backends

    backends = open_backends(settings)

    async def once() -> None:
        try:
            report = await build_gc(settings, backends).run_once()
        finally:
            await backends.metadata.close()
        print(f"revisions expired: {report.revisions_expired}; blobs: {report.blob_stats}")

    asyncio.run(once())


def _print_ca(settings: Settings) -> None:
    """Only the path on stdout, so that `export REQUESTS_CA_BUNDLE=$(localbox ca)` works."""
    from localbox.tls import TlsError, ensure_ca

    try:
        print(ensure_ca(settings.tls_dir).resolve())
    except (TlsError, OSError) as e:
        sys.exit(f"localbox: {e}")


def _account_create(settings: Settings, email: str, name: str | None, quota: str | None) -> None:
    from localbox.services.accounts import AccountExists, AccountService

    try:
        allocation = parse_size(quota) if quota is not None else None
    except ValueError as e:
        sys.exit(f"localbox: --quota: {e}")
    try:
        account = AccountService(metadata_store(settings)).create_account(email, name, allocation)
    except AccountExists:
        sys.exit(f"localbox: an account with email {email} already exists")
    print(f"created account {email} (root namespace {account.root_namespace_id})", file=sys.stderr)
    print(account.account_id)


def _token_create_any(settings: Settings, args: argparse.Namespace) -> None:
    try:
        rate = cli_team.parse_rate(args.rate_limit) if args.rate_limit is not None else None
    except ValueError as e:
        sys.exit(f"localbox: --rate-limit: {e}")
    if (args.team is None) == (args.email is None):
        sys.exit("localbox: token create takes an account email or --team NAME (one of them)")
    if args.team is not None:
        cli_team.create_team_token(settings, args.team, args.scopes, rate)
        return
    secret = _token_create(settings, args.email, args.scopes)
    if rate is not None:
        cli_team.set_token_rate(settings, secret, rate)


def _token_create(settings: Settings, email: str, scopes: list[str] | None) -> str:
    from localbox.services.accounts import ALL_SCOPES, AccountService, UnknownAccount

    unknown = set(scopes or ()) - ALL_SCOPES
    if unknown:
        print(f"localbox: note: scope(s) not checked by any route yet: {', '.join(sorted(unknown))}",
              file=sys.stderr)
    try:
        secret, token = AccountService(metadata_store(settings)).create_token(email, scopes)
    except UnknownAccount:
        sys.exit(f"localbox: no account with email {email}; create it with `localbox account create {email}`")
    print(f"token {token.token_id} for {email} with scopes: {' '.join(sorted(token.scopes))} "
          f"(shown only now: localbox stores only its hash)", file=sys.stderr)
    print(secret)
    return secret


def _token_list(settings: Settings, email: str) -> None:
    import time

    from localbox.services.accounts import AccountService, UnknownAccount

    try:
        tokens = AccountService(metadata_store(settings)).list_tokens(email)
    except UnknownAccount:
        sys.exit(f"localbox: no account with email {email}")
    for t in tokens:
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t.created)) if t.created else "-"
        print(f"{t.token_id}  {t.prefix or '-'}...  {created}  {' '.join(sorted(t.scopes))}")


def _token_revoke(settings: Settings, email: str, which: str | None, everything: bool) -> None:
    from localbox.services.accounts import AccountService, UnknownAccount, UnknownToken

    if (which is None) != everything:
        sys.exit("localbox: token revoke needs a token id (or the token) or --all, not both")
    try:
        revoked = AccountService(metadata_store(settings)).revoke_tokens(email, which)
    except UnknownAccount:
        sys.exit(f"localbox: no account with email {email}")
    except UnknownToken:
        sys.exit(f"localbox: {email} has no such token; `localbox token list {email}` shows their ids")
    for t in revoked:
        print(f"revoked {t.token_id}")


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
    from localbox.app import create_app, open_backends
    from localbox.http_limits import guarded_protocol
    from localbox.serving import ServeError
    from localbox.serving import serve as serve_listeners

    configure_logging(settings.log_level, settings.log_format)
    listeners, tls_notes = _listeners(settings)
    backends = _open_backends(settings, open_backends)
    generated_admin_token = settings.admin_token is None
    if generated_admin_token:
        # Prefixed: a bare token_urlsafe may start with "-", which argparse would take for an option when
        # the printed token is passed back as `--admin-token TOKEN`.
        settings = replace(settings, admin_token="lbadm-" + secrets.token_urlsafe(24))
    try:
        app = create_app(settings, backends)
    except ValueError as e:  # a bad --seed file
        sys.exit(f"localbox: --seed: {e}")
    urls = " and ".join(f"{listener.url}/2/" for listener in listeners)
    print(f"localbox {__version__} serving the Dropbox API v2 at {urls}", flush=True)
    for note in tls_notes:
        print(note, flush=True)
    print(f"  backends: {backends.describe()}", flush=True)
    print(f"  admin API: {listeners[0].url}/admin/ with LOCALBOX_ADMIN_TOKEN="
          f"{settings.admin_token if generated_admin_token else '(your --admin-token)'}", flush=True)
    if settings.memory:
        print("  accounts: from --seed, or POST /admin/accounts", flush=True)
    else:
        where = (f"--data-dir {settings.data_dir}" if settings.database_url is None
                 else "--database-url ... (the same URL; #5)")
        print(f"  get a token: localbox account create you@example.com {where} && "
              f"localbox token create you@example.com {where}", flush=True)
    try:
        serve_listeners(
            app, listeners, log_level=settings.log_level.lower(), access_log=False,
            http=guarded_protocol(settings.header_timeout, settings.body_timeout, settings.send_timeout),
            limit_concurrency=settings.max_connections or None,
            loop="uvloop" if sys.platform != "win32" else "asyncio", timeout_keep_alive=30,
            **({"log_config": None} if settings.log_format == "json" else {}),  # uvicorn logs as JSON too
        )
    except ServeError as e:
        sys.exit(f"localbox: {e}")


def _open_backends(settings: Settings, opener: Any) -> Any:
    """The stores `serve` uses, or a message saying what to do (migrate, install an extra, fix a URL)."""
    from localbox.backends import BackendError
    from localbox.domain.errors import StoreUnavailable
    from localbox.stores.schema_head import SchemaOutdated

    try:
        backends = opener(settings)
    except (BackendError, StoreUnavailable, SchemaOutdated) as e:
        sys.exit(f"localbox: {e}")
    check = getattr(backends.blobs, "check", None)  # S3: the bucket answers now, not at the first upload
    if check is not None:
        try:
            check()
        except StoreUnavailable as e:
            sys.exit(f"localbox: --blob-url {getattr(backends.blobs, 'url', '')}: {e}")
    return backends


def _listeners(settings: Settings) -> tuple[list[Listener], list[str]]:
    """Plain HTTP on --port, HTTPS on --port (--tls, --tls-cert) or on --tls-port next to it; and what
    to tell the user about the certificate."""
    from localbox.serving import Listener

    cert, key = settings.tls_cert, settings.tls_key
    notes = [f"  TLS: your certificate {cert}"] if cert else []
    if settings.https and cert is None:
        from localbox.tls import TlsError, ensure_server_cert, listen_host_name

        host = listen_host_name(settings.host)
        try:
            files = ensure_server_cert(settings.tls_dir, [*settings.tls_names, *([host] if host else [])])
        except (TlsError, ValueError, OSError) as e:
            sys.exit(f"localbox: {e}")
        cert, key, ca = files.cert, files.key, files.ca_cert.resolve()
        notes = [f"  TLS: certificate for {', '.join(files.names)}, signed by the local CA {ca}",
                 f"  trust that CA once: REQUESTS_CA_BUNDLE={ca} (or NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, "
                 f"rclone --ca-cert); `localbox ca` prints its path"]
    plain = Listener(settings.host, settings.port)
    if not settings.https:
        return [plain], notes
    secure = Listener(settings.host, settings.tls_port or settings.port, cert, key)
    return ([plain, secure] if settings.tls_port is not None else [secure]), notes
