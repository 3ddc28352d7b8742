"""users/* routes (and check/user): the caller's account, other accounts, features, space usage."""

from __future__ import annotations

from typing import Any

from localbox.api.context import Call, Services
from localbox.domain.models import Account
from localbox.spec import check, common, users, users_common


def _name(acct: Account) -> Any:
    display = f"{acct.given_name} {acct.surname}".strip()
    abbreviated = "".join(p[0].upper() for p in display.split()[:2]) or acct.email[:1].upper()
    return users.Name(given_name=acct.given_name, surname=acct.surname, familiar_name=acct.given_name,
                      display_name=display or acct.email, abbreviated_name=abbreviated)


async def get_current_account(svc: Services, call: Call) -> Any:
    acct = call.caller.account
    return users.FullAccount(
        account_id=acct.account_id, name=_name(acct),
        email=acct.email, email_verified=True, disabled=False, locale="en",
        referral_link="https://www.dropbox.com/referrals/localbox", is_paired=False,
        account_type=users_common.AccountType.basic,
        root_info=common.UserRootInfo(root_namespace_id=acct.root_namespace_id,
                                      home_namespace_id=acct.root_namespace_id),
        country="US",
    )


async def get_space_usage(svc: Services, call: Call) -> Any:
    used = await svc.accounts.bytes_used(call.caller.account.account_id)
    allocation = users.SpaceAllocation.individual(users.IndividualSpaceAllocation(allocated=svc.quota))
    return users.SpaceUsage(used=used, allocation=allocation)


async def check_user(svc: Services, call: Call) -> Any:
    return check.EchoResult(result=call.arg.query)


HANDLERS = {
    "users/get_current_account": get_current_account,
    "users/get_space_usage": get_space_usage,
    "check/user": check_user,
}
