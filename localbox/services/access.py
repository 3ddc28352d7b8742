"""Who may use which namespace: the one access rule every file operation asks.

An account always reaches its own namespaces.  A team member also reaches the team root namespace
and the team folders of their team (Dropbox's team space); a member's home namespace is reachable by
others only through an admin acting in `whole_team` Select-Admin mode, which Dropbox allows on read
routes.  Removed members lose the team's namespaces at once: membership is read in the same
transaction as the access it guards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from localbox.domain.models import Account
from localbox.domain.teams import AdminMode, NamespaceKind
from localbox.stores.base import MetadataTx

if TYPE_CHECKING:
    from localbox.services.accounts import Caller


def can_access(tx: MetadataTx, caller: Caller, namespace_id: str) -> bool:
    owner = tx.namespace_owner(namespace_id)
    if owner is None:
        return False
    if owner == caller.account.account_id:
        return True
    space = tx.get_team_namespace(namespace_id)
    if space is None:
        return False
    member = tx.team_member_of_account(caller.account.account_id)
    if member is None or member.team_id != space.team_id:
        return False
    if space.kind != NamespaceKind.HOME:
        return True
    return member.is_admin and caller.select_admin == AdminMode.WHOLE_TEAM


@dataclass(frozen=True, slots=True)
class RootInfo:
    """users.RootInfo: `home_path` is set (and the tag is `team`) for a member of a team space."""

    root_namespace_id: str
    home_namespace_id: str
    home_path: str | None = None


def display_name(account: Account) -> str:
    return f"{account.given_name} {account.surname}".strip() or account.email


def root_info_tx(tx: MetadataTx, account: Account) -> RootInfo:
    """A member's root is the team root namespace, under which their home folder is named after them;
    anyone else's root is their home."""
    member = tx.team_member_of_account(account.account_id)
    team = tx.get_team(member.team_id) if member is not None else None
    if team is None:
        return RootInfo(account.root_namespace_id, account.root_namespace_id)
    return RootInfo(team.root_namespace_id, account.root_namespace_id, "/" + display_name(account))
