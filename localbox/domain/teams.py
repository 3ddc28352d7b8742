"""Teams as Dropbox Business models them: a team space (one team root namespace, each member's home
namespace, team folders), members with team_member_ids, team tokens, and the monthly data
transport allowance.  Plain values only."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import StrEnum

# A team token is told apart from a user token by its prefix alone, so authentication needs one
# lookup.  User tokens are "sl.lb" + URL-safe base64, which never contains "." after the prefix.
TEAM_TOKEN_PREFIX = "sl.lbteam."
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def token_key(bearer: str) -> str:
    """How localbox's team tables store a token: its SHA-256, never the token itself."""
    return hashlib.sha256(bearer.encode("utf-8", "surrogatepass")).hexdigest()


def is_team_token(bearer: str) -> bool:
    return bearer.startswith(TEAM_TOKEN_PREFIX)


def is_team_token_secret(secret: str) -> bool:
    """Whether `secret` has the shape of the team tokens localbox makes (the prefix, then URL-safe
    base64): what a fixed team token of a seed file must look like."""
    tail = secret[len(TEAM_TOKEN_PREFIX):]
    return is_team_token(secret) and bool(tail) and all(c in _URLSAFE for c in tail)


def month_of(ts: float) -> str:
    """The UTC calendar month a call falls in ("2026-05"): transport counters reset on the 1st."""
    return time.strftime("%Y-%m", time.gmtime(ts))


class NamespaceKind(StrEnum):
    ROOT = "root"  # the team root namespace: the parent of every member home and team folder
    HOME = "home"  # a member's home namespace (the account's own namespace)
    FOLDER = "folder"  # a team folder


class AdminMode(StrEnum):
    """Dropbox-API-Select-Admin modes (stone_cfg `select_admin_mode`)."""

    TEAM_ADMIN = "team_admin"  # team-owned content: the team root and team folders
    WHOLE_TEAM = "whole_team"  # that, plus every member's home (read routes)


@dataclass(frozen=True, slots=True)
class Team:
    team_id: str
    name: str
    root_namespace_id: str
    created: float
    transport_limit: int | None = None  # data transport calls per month; None: unlimited


@dataclass(frozen=True, slots=True)
class TeamMember:
    team_member_id: str
    team_id: str
    account_id: str
    is_admin: bool
    joined: float
    removed: float | None = None
    suspended: float | None = None  # when an admin suspended the member (still on the team, locked out)

    @property
    def active(self) -> bool:
        """On the team (suspended or not)."""
        return self.removed is None


@dataclass(frozen=True, slots=True)
class TeamNamespace:
    namespace_id: str
    team_id: str
    kind: NamespaceKind
    name: str
    team_member_id: str | None = None  # set for member homes


@dataclass(frozen=True, slots=True)
class TeamToken:
    token_key: str  # token_key(bearer)
    team_id: str
    admin_member_id: str | None  # the admin who "generated" it (team/token/get_authenticated_admin)
    scopes: frozenset[str]
    created: float


@dataclass(frozen=True, slots=True)
class TransportUsage:
    team_id: str
    month: str
    calls: int  # calls let through this month
    denied: int  # calls refused with 403 this month
