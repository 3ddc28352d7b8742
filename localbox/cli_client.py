"""`localbox upload | download | ls`: the client commands (localbox/client), against localbox or Dropbox.

They take --url (env LOCALBOX_URL, default http://127.0.0.1:8080; https://api.dropboxapi.com for real
Dropbox) and --token (env DROPBOX_TOKEN).  Exit status: 0 all done, 1 some files failed, 2 a usage or
connection error, 130 interrupted (rerun with --resume)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from localbox.config import parse_size

_COMMANDS = ("upload", "download", "ls")
DEFAULT_URL = "http://127.0.0.1:8080"


def _connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help=f"the server: localbox (default $LOCALBOX_URL or {DEFAULT_URL}) or "
                                 "https://api.dropboxapi.com for Dropbox (content calls then go to "
                                 "content.dropboxapi.com)")
    p.add_argument("--token", help="a bearer access token (default $DROPBOX_TOKEN)")
    p.add_argument("--ca-cert", help="trust this CA file for HTTPS (e.g. the output of `localbox ca`)")


def _output_flags(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quiet", "-q", action="store_true", help="no progress bars; only the summary's failures")
    mode.add_argument("--json", action="store_true", help="no progress bars; the summary as one JSON object")


def _transfer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parallel", type=int, default=8, help="HTTP transfers in flight at once (default 8)")
    p.add_argument("--resume", action="store_true",
                   help="skip files already at the destination with the same content hash (after an "
                        "interruption, or to sync again)")
    p.add_argument("--retries", type=int, default=8,
                   help="retries of a call after 5xx answers or connection failures (default 8; "
                        "429 answers are waited out as Retry-After says, not counted)")


def add_parsers(sub: Any) -> None:
    up = sub.add_parser(
        "upload", help="upload a file or a folder tree through upload sessions and finish_batch",
        description="Upload LOCAL (a file, or a folder whose contents land in REMOTE_FOLDER) in parallel: "
                    "small files in one upload_session/start call each, large files through concurrent "
                    "sessions in 4 MiB-aligned parts; commits in batches of up to 1000 with finish_batch "
                    "and finish_batch/check, one batch at a time.")
    up.add_argument("local", help="a local file or folder")
    up.add_argument("remote", help="the remote folder, e.g. /backup (/ is the root)")
    _connection_flags(up)
    _transfer_flags(up)
    up.add_argument("--part-size", default="8MiB",
                    help="part size of large files, a multiple of 4MiB up to 148MiB (default 8MiB); files up "
                         "to this size go in a single call")
    up.add_argument("--batch-size", type=int, default=1000, help="entries per finish_batch (1-1000, default 1000)")
    up.add_argument("--batch-api", choices=("v1", "v2"), default="v1",
                    help="v1: finish_batch + finish_batch/check (default); v2: finish_batch_v2 (synchronous)")
    up.add_argument("--sequential", action="store_true",
                    help="send large files through sequential sessions (one part after another) instead of "
                         "concurrent ones")
    up.add_argument("--job-timeout", type=float, default=900.0,
                    help="seconds to poll a finish_batch job before settling its entries one by one "
                         "(default 900)")
    _output_flags(up)

    down = sub.add_parser("download", help="download a file or a folder tree",
                          description="Download REMOTE (a file, or a folder and everything below it) into LOCAL; "
                                      "each file is checked against its content hash before it takes its name.")
    down.add_argument("remote", help="a remote file or folder, e.g. /backup (/ is the root)")
    down.add_argument("local", help="a local folder (or file name, for a single file)")
    _connection_flags(down)
    _transfer_flags(down)
    _output_flags(down)

    ls = sub.add_parser("ls", help="list a remote folder", description="List a remote folder (list_folder).")
    ls.add_argument("remote", nargs="?", default="/", help="a remote folder (default /)")
    ls.add_argument("--recursive", "-r", action="store_true", help="everything below it, with full paths")
    ls.add_argument("--long", "-l", action="store_true", help="kind, size, modified, rev and content hash")
    ls.add_argument("--json", action="store_true", help="one JSON metadata object per line")
    _connection_flags(ls)


def handles(command: str) -> bool:
    return command in _COMMANDS


def run(args: argparse.Namespace) -> NoReturn:
    try:
        import httpx  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        from localbox.client import MISSING_EXTRA

        sys.exit(f"localbox: {MISSING_EXTRA}")
    token = args.token or os.environ.get("DROPBOX_TOKEN")
    if not token:
        sys.exit("localbox: no token: pass --token or set DROPBOX_TOKEN")
    url = args.url or os.environ.get("LOCALBOX_URL") or DEFAULT_URL
    sys.exit(asyncio.run(_main(args, url, token)))


async def _main(args: argparse.Namespace, url: str, token: str) -> int:
    from localbox.client.download import Downloader, ls
    from localbox.client.http import ApiError, DropboxHttp
    from localbox.client.progress import Bars, Quiet, Reporter
    from localbox.client.upload import Uploader

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
    parallel = max(1, getattr(args, "parallel", 8))
    http = DropboxHttp(url, token, connections=parallel + 2, max_retries=getattr(args, "retries", 8),
                       verify=args.ca_cert or True)
    try:
        if args.command == "ls":
            await ls(http, args.remote, recursive=args.recursive, long=args.long, as_json=args.json, out=sys.stdout)
            return 0
        quiet = args.quiet or args.json
        reporter: Reporter = Quiet() if quiet else Bars("upload" if args.command == "upload" else "download")
        if not quiet:
            http.on_retry = lambda reason, seconds: reporter.note(f"retry in {seconds:.1f}s: {reason}")
        if args.command == "upload":
            try:
                part = parse_size(args.part_size)
                uploader = Uploader(http, reporter, parallel=parallel, part_size=part, batch_size=args.batch_size,
                                    batch_api=args.batch_api, sequential=args.sequential, resume=args.resume,
                                    job_timeout=args.job_timeout)
            except ValueError as e:
                print(f"localbox: {e}", file=sys.stderr)
                return 2
            summary = await uploader.run(Path(args.local), args.remote)
        else:
            summary = await Downloader(http, reporter, parallel=parallel, resume=args.resume).run(
                args.remote, Path(args.local))
        if args.json:
            summary.render(True, sys.stdout)
        elif not args.quiet or summary.failures or summary.interrupted:
            summary.render(False, sys.stderr if args.quiet else sys.stdout)
        if summary.interrupted:
            return 130
        return 1 if summary.failures else 0
    except ApiError as e:
        print(f"localbox: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"localbox: {e}", file=sys.stderr)
        return 2
    except asyncio.CancelledError:
        return 130
    finally:
        await http.aclose()
