"""`localbox faults|reset|requests`: the admin API of a running server, from the command line.

They talk HTTP to --url (env LOCALBOX_URL, default http://127.0.0.1:8080) with --admin-token (env
LOCALBOX_ADMIN_TOKEN; `serve` prints a generated one when none is set)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from localbox.config import Settings

_COMMANDS = ("faults", "reset", "requests")


def _server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the server (default $LOCALBOX_URL or http://127.0.0.1:8080)")
    p.add_argument("--admin-token", help="the server's admin token (default $LOCALBOX_ADMIN_TOKEN)")


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    faults = sub.add_parser("faults", help="inject faults into a running server (admin API)")
    fsub = faults.add_subparsers(dest="action", required=True)
    add = fsub.add_parser("add", help="add a fault rule; prints it (with its id) as JSON")
    add.add_argument("kind", nargs="?", help="a kind from `localbox faults kinds`")
    add.add_argument("--route", help="route glob, e.g. files/upload_session/append_v2 or 'files/*'")
    add.add_argument("--account", help="only calls of this account (email or account id)")
    add.add_argument("--path", help="only calls (or batch entries) naming a path that matches this glob")
    add.add_argument("--probability", type=float, help="fire on this share of matching calls (default 1)")
    add.add_argument("--times", type=int, help="fire this many times, then stop (default: no end)")
    add.add_argument("--after", type=int, help="let this many matching calls through first")
    add.add_argument("--seed", type=int, help="seed of the rule's random draws (default: random, shown)")
    add.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a parameter of the kind (repeatable), e.g. retry_after=3, format=text")
    add.add_argument("--json", dest="rule_json", help="the whole rule as JSON instead")
    _server_flags(add)
    for name, text in (("list", "list the fault rules, with how often each matched and fired"),
                       ("kinds", "list the fault kinds and their parameters"),
                       ("clear", "remove every fault rule")):
        _server_flags(fsub.add_parser(name, help=text))
    delete = fsub.add_parser("delete", help="remove one fault rule")
    delete.add_argument("id", help="the rule's id (from `localbox faults list`)")
    _server_flags(delete)

    reset = sub.add_parser("reset", help="wipe a running server's state (all, or one account)")
    reset.add_argument("--account", help="only this account (email or account id) and what it owns")
    reset.add_argument("--no-seed", action="store_true", help="do not apply the server's --seed again")
    _server_flags(reset)

    requests = sub.add_parser("requests", help="show a running server's request log")
    requests.add_argument("--follow", "-f", action="store_true", help="keep printing new requests")
    requests.add_argument("--json", action="store_true", help="one JSON object per line")
    requests.add_argument("--since", type=int, default=0, help="only requests after this sequence number")
    _server_flags(requests)


def handles(command: str) -> bool:
    return command in _COMMANDS


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _print_request(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(r), flush=True)
        return
    faults = f"  faults: {', '.join(r['faults'])}" if r["faults"] else ""
    error = f" {r['error']}" if r["error"] else ""
    print(f"{r['seq']:>6} {r['time']} {r['status'] if r['status'] is not None else '---'} {r['route']} "
          f"{r['account'] or '-'} {r['duration_ms']}ms{error}{faults}", flush=True)


def run(settings: Settings, args: argparse.Namespace) -> None:
    from localbox.testing.server import AdminClient, AdminError

    url = args.url or os.environ.get("LOCALBOX_URL") or f"http://{settings.host}:{settings.port}"
    if not settings.admin_token:
        sys.exit("localbox: give --admin-token or set LOCALBOX_ADMIN_TOKEN (serve prints its token at start)")
    client = AdminClient(url, settings.admin_token)
    try:
        if args.command == "faults":
            _faults(client, args)
        elif args.command == "reset":
            print(json.dumps(client.reset(args.account, seed=not args.no_seed)))
        else:
            since = args.since
            while True:
                batch = client.requests(since, wait=25 if args.follow else 0)
                for r in batch:
                    _print_request(r, args.json)
                    since = r["seq"]
                if not args.follow:
                    return
    except AdminError as e:
        sys.exit(f"localbox: {e}")
    except OSError as e:
        sys.exit(f"localbox: cannot reach {url}: {e}")
    except KeyboardInterrupt:
        return


def _faults(client: Any, args: argparse.Namespace) -> None:
    if args.action == "add":
        if args.rule_json:
            rule = json.loads(args.rule_json)
        elif args.kind:
            rule = {"kind": args.kind, "params": {}}
            for item in args.param:
                name, eq, value = item.partition("=")
                if not eq:
                    sys.exit(f"localbox: --param {item}: expected NAME=VALUE")
                rule["params"][name] = _value(value)
            for name in ("route", "account", "path", "probability", "times", "after", "seed"):
                if getattr(args, name) is not None:
                    rule[name] = getattr(args, name)
        else:
            sys.exit("localbox: faults add needs a KIND (or --json)")
        print(json.dumps(client.call("POST", "/admin/faults", rule)))
    elif args.action == "list":
        for rule in client.faults():
            print(json.dumps(rule))
    elif args.action == "kinds":
        for name, kind in client.call("GET", "/admin/faults/kinds").items():
            params = ", ".join(f"{p}={json.dumps(v)}" for p, v in kind["params"].items())
            print(f"{name}{f' ({params})' if params else ''}: {kind['doc']}")
    elif args.action == "delete":
        client.delete_fault(args.id)
    else:
        print(f"removed {client.clear_faults()} fault rule(s)")
