"""`localbox team ...`, `token create --team` and `token create --rate-limit`: the team admin commands
(they work on the data directory, whether or not a server runs)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from localbox.config import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: Callable[[argparse.ArgumentParser], None]) -> None:
    team = sub.add_parser("team", help="manage Business teams: members, team folders, data transport limits")
    tsub = team.add_subparsers(dest="action", required=True)
    create = tsub.add_parser("create", help="create a team with its team root namespace")
    create.add_argument("name", help="the team's name")
    add = tsub.add_parser("add-member",
                          help="put an existing account on a team; prints its team_member_id")
    add.add_argument("name", help="the team's name")
    add.add_argument("email", help="the member's account email")
    add.add_argument("--admin", action="store_true", help="make the member a team admin")
    remove = tsub.add_parser("remove-member", help="take an account off its team")
    remove.add_argument("name", help="the team's name")
    remove.add_argument("email", help="the member's account email")
    suspend = tsub.add_parser("suspend-member",
                              help="suspend a member: they stay on the team, but their calls get user_suspended")
    suspend.add_argument("name", help="the team's name")
    suspend.add_argument("email", help="the member's account email")
    unsuspend = tsub.add_parser("unsuspend-member", help="lift a member's suspension")
    unsuspend.add_argument("name", help="the team's name")
    unsuspend.add_argument("email", help="the member's account email")
    folder = tsub.add_parser("folder", help="team folders")
    fsub = folder.add_subparsers(dest="folder_action", required=True)
    fcreate = fsub.add_parser("create", help="create a team folder; prints its namespace id")
    fcreate.add_argument("name", help="the team's name")
    fcreate.add_argument("folder", help="the team folder's name")
    limit = tsub.add_parser("set-limit", help="set the team's monthly data transport limit")
    limit.add_argument("name", help="the team's name")
    limit.add_argument("--data-transport-calls", required=True,
                       help="calls per calendar month (UTC), or `none` for no limit")
    usage = tsub.add_parser("usage", help="data transport calls counted this month")
    usage.add_argument("name", help="the team's name")
    usage.add_argument("--month", help="YYYY-MM (default: the current month, UTC)")
    for leaf in (create, add, remove, suspend, unsuspend, fcreate, limit, usage):
        common(leaf)


def parse_rate(text: str) -> float:
    """`10/s`, `10` (per second) or `600/min`."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"expected a positive rate such as 10/s or 600/min, got {text!r}")
    return float(m.group(1)) / (60.0 if (m.group(2) or "s").startswith("m") else 1.0)


def run(settings: Settings, args: argparse.Namespace) -> None:
    from localbox import cli
    from localbox.services.accounts import UnknownAccount
    from localbox.services.teams import TeamError, TeamService

    teams = TeamService(cli.metadata_store(settings))
    try:
        if args.action == "create":
            team = teams.create_team(args.name)
            print(f"created team {team.name} (team root namespace {team.root_namespace_id})", file=sys.stderr)
            print(team.team_id)
        elif args.action == "add-member":
            member = teams.add_member(args.name, args.email, admin=args.admin)
            role = "admin" if member.is_admin else "member"
            print(f"{args.email} joined {args.name} as {role}", file=sys.stderr)
            print(member.team_member_id)
        elif args.action == "remove-member":
            member = teams.remove_member(args.name, args.email)
            print(f"removed {args.email} ({member.team_member_id}) from {args.name}")
        elif args.action in ("suspend-member", "unsuspend-member"):
            member = teams.set_suspended(args.name, args.email, suspended=args.action == "suspend-member")
            done = "suspended" if member.suspended is not None else "unsuspended"
            print(f"{done} {args.email} ({member.team_member_id}) in {args.name}")
        elif args.action == "folder":
            folder = teams.create_folder(args.name, args.folder)
            print(f"created team folder {folder.name} in {args.name}", file=sys.stderr)
            print(folder.namespace_id)
        elif args.action == "set-limit":
            raw = args.data_transport_calls.strip().lower()
            if raw not in ("none", "unlimited") and not raw.isdigit():
                sys.exit("localbox: --data-transport-calls takes a whole number or `none`")
            team = teams.set_transport_limit(args.name, None if not raw.isdigit() else int(raw))
            shown = "no limit" if team.transport_limit is None else f"{team.transport_limit} calls a month"
            print(f"{team.name}: data transport limit {shown}")
        elif args.action == "usage":
            team, used = teams.usage(args.name, args.month)
            limit = "none" if team.transport_limit is None else str(team.transport_limit)
            print(f"team {team.name} month {used.month}: data transport calls {used.calls}, denied {used.denied}, "
                  f"limit {limit}")
    except UnknownAccount as e:
        sys.exit(f"localbox: no account with email {e}; create it with `localbox account create {e}`")
    except TeamError as e:
        sys.exit(f"localbox: {e}")


def create_team_token(settings: Settings, team_name: str, scopes: list[str] | None, rate: float | None) -> None:
    from localbox import cli
    from localbox.services.teams import TEAM_SCOPES, TeamError, TeamService

    unknown = set(scopes or ()) - TEAM_SCOPES
    if unknown:
        print(f"localbox: note: scope(s) not checked by any route yet: {', '.join(sorted(unknown))}",
              file=sys.stderr)
    try:
        secret, token = TeamService(cli.metadata_store(settings)).create_token(team_name, scopes, rate)
    except TeamError as e:
        sys.exit(f"localbox: {e}")
    admin = token.admin_member_id or "none (the team has no admin yet)"
    print(f"team token for {team_name} (admin {admin}) with scopes: {' '.join(sorted(token.scopes))}"
          f"{'' if rate is None else f', at most {rate:g} requests/s'}", file=sys.stderr)
    print(secret)


def set_token_rate(settings: Settings, secret: str, rate: float) -> None:
    from localbox import cli
    from localbox.services.teams import TeamService

    TeamService(cli.metadata_store(settings)).set_rate_limit(secret, rate)
