"""users/* routes (and check/user): the caller's account, other accounts, features, space usage."""

from __future__ import annotations

from typing import Any

from localbox.api.context import Call, Services
from localbox.api.handlers import team as team_handlers
from localbox.domain.errors import CallError
from localbox.domain.models import Account
from localbox.spec import check, common, users, users_common


def _name(acct: Account) -> Any:
    display = f"{acct.given_name} {acct.surname}".strip()
    abbreviated = "".join(p[0].upper() for p in display.split()[:2]) or acct.email[:1].upper()
    return users.Name(given_name=acct.given_name, surname=acct.surname, familiar_name=acct.given_name,
                      display_name=display or acct.email, abbreviated_name=abbreviated)


async def get_current_account(svc: Services, call: Call) -> Any:
    acct = call.caller.account
    info, membership = await svc.teams.membership(acct)
    root_info = (common.TeamRootInfo(root_namespace_id=info.root_namespace_id,
                                     home_namespace_id=info.home_namespace_id, home_path=info.home_path)
                 if info.home_path is not None else
                 common.UserRootInfo(root_namespace_id=info.root_namespace_id,
                                     home_namespace_id=info.home_namespace_id))
    extra: dict[str, Any] = {}
    if membership is not None:  # a Business account: its team, and its id on that team
        policies = team_handlers.policies()
        extra = {"team": users.FullTeam(id=membership.team.team_id, name=membership.team.name,
                                        sharing_policies=policies.sharing, office_addin_policy=policies.office_addin,
                                        top_level_content_policy=policies.top_level_content_policy),
                 "team_member_id": membership.member.team_member_id}
    return users.FullAccount(
        account_id=acct.account_id, name=_name(acct),
        email=acct.email, email_verified=True, disabled=False, locale="en",
        referral_link="https://www.dropbox.com/referrals/localbox", is_paired=False,
        account_type=users_common.AccountType.business if membership else users_common.AccountType.basic,
        root_info=root_info, country="US", **extra,
    )


def _basic(acct: Account) -> Any:
    # localbox has no teams: nobody is a teammate (Dropbox sets is_teammate only within a team) and
    # there is no team_member_id or profile photo to report.
    return users.BasicAccount(account_id=acct.account_id, name=_name(acct), email=acct.email,
                              email_verified=True, disabled=False, is_teammate=False)


async def get_account(svc: Services, call: Call) -> Any:
    account_id = call.arg.account_id
    found = await svc.accounts.get_accounts([account_id])
    if account_id not in found:
        raise CallError("no_account")
    return _basic(found[account_id])


async def get_account_batch(svc: Services, call: Call) -> Any:
    ids: list[str] = call.arg.account_ids
    found = await svc.accounts.get_accounts(ids)
    for account_id in ids:
        if account_id not in found:
            raise CallError("no_account", payload={"value": account_id})  # the first missing id
    return [_basic(found[i]) for i in ids]


# localbox implements neither Paper docs nor file locks.  A team member has a team space whose root is
# distinct from their home; nobody else does.  Each answers with its own value type.
_TEAM_SPACE_FEATURES = ("team_shared_dropbox", "distinct_member_home")
_FEATURE_VALUES = {
    "paper_as_files": users.PaperAsFilesValue,
    "file_locking": users.FileLockingValue,
    "team_shared_dropbox": users.TeamSharedDropboxValue,
    "distinct_member_home": users.DistinctMemberHomeValue,
}


async def features_get_values(svc: Services, call: Call) -> Any:
    features = call.arg.features
    if not features:
        raise CallError("empty_features_list")
    names = [next(n for n in _FEATURE_VALUES if getattr(f, f"is_{n}")()) for f in features]
    member = False
    if any(n in _TEAM_SPACE_FEATURES for n in names):
        member = (await svc.teams.membership(call.caller.account))[1] is not None
    values = [users.UserFeatureValue(n, _FEATURE_VALUES[n].enabled(member and n in _TEAM_SPACE_FEATURES))
              for n in names]
    return users.UserFeaturesGetValuesBatchResult(values=values)


async def get_space_usage(svc: Services, call: Call) -> Any:
    used = await svc.accounts.bytes_used(call.caller.account.account_id)
    allocated = call.caller.quota if call.caller.quota is not None else svc.quota
    allocation = users.SpaceAllocation.individual(users.IndividualSpaceAllocation(allocated=allocated))
    return users.SpaceUsage(used=used, allocation=allocation)


async def check_user(svc: Services, call: Call) -> Any:
    return check.EchoResult(result=call.arg.query)


HANDLERS = {
    "users/get_current_account": get_current_account,
    "users/get_space_usage": get_space_usage,
    "users/get_account": get_account,
    "users/get_account_batch": get_account_batch,
    "users/features/get_values": features_get_values,
    "check/user": check_user,
}
