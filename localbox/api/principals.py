"""Who a request acts as: a user token, or a team token (on team routes as the team; on user routes
as the member named by Dropbox-API-Select-User, or as an admin named by Dropbox-API-Select-Admin on
routes that allow it), and the per-token rate limit that applies."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from localbox.api.context import Services
from localbox.domain.errors import AuthFailure, BadRequest, RateLimited
from localbox.domain.models import Account
from localbox.domain.teams import is_team_token, token_key
from localbox.services.teams import SELECT_SCOPE, TeamPrincipal
from localbox.spec import RouteSpec

# Dropbox's own 400 texts for a token of the wrong kind (as real clients have reported them).
TEAM_TOKEN_ON_USER_ROUTE = (
    "This API function operates on a single Dropbox account, but the OAuth 2 access token you provided is for "
    "an entire Dropbox Business team.  Since your API app key has team member file access permissions, you can "
    "operate on a team member's Dropbox by providing the \"Dropbox-API-Select-User\" HTTP header or "
    "\"select_user\" URL parameter to specify the exact user "
    "<https://www.dropbox.com/developers/documentation/http/teams>.")
USER_TOKEN_ON_TEAM_ROUTE = (
    "This is a DfB team management function.  The OAuth 2 access token you provided is for a specific Dropbox "
    "user account and does not work with this function.")
SELECT_USER = "Dropbox-API-Select-User"
SELECT_ADMIN = "Dropbox-API-Select-Admin"


@dataclass(frozen=True, slots=True)
class Authenticated:
    key: str  # token_key of the bearer
    scopes: frozenset[str]
    account: Account | None = None  # a user token's account
    team: TeamPrincipal | None = None  # a team token's team


@dataclass(frozen=True, slots=True)
class Acting:
    """The account a user route acts as, and how it was reached."""

    account: Account
    scopes: frozenset[str]
    select_admin: str | None = None  # the route's select_admin_mode when Select-Admin was used


async def authenticate(services: Services, bearer: str) -> Authenticated:
    if is_team_token(bearer):
        team = await services.teams.authenticate(bearer)
        return Authenticated(team.token.token_key, team.token.scopes, team=team)
    account, scopes = await services.accounts.authenticate(bearer)
    return Authenticated(token_key(bearer), scopes, account=account)


def _selection(request: Request) -> tuple[str, str] | None:
    user = request.headers.get(SELECT_USER, request.query_params.get("select_user"))
    admin = request.headers.get(SELECT_ADMIN, request.query_params.get("select_admin"))
    if user is not None and admin is not None:
        raise BadRequest(f'Only one of the "{SELECT_USER}" and "{SELECT_ADMIN}" HTTP headers may be given.')
    if user is not None:
        return SELECT_USER, user.strip()
    if admin is not None:
        return SELECT_ADMIN, admin.strip()
    return None


async def admit(services: Services, who: Authenticated, request: Request) -> None:
    """Apply the token's rate limit, if it has one: per token, and per member when a team token
    selects one (Dropbox's rule)."""
    per_second = await services.teams.rate_limit_of(who.key)
    if per_second is None:
        return
    selected = _selection(request) if who.team is not None else None
    key = who.key if selected is None else f"{who.key}|{selected[1]}"
    wait = await services.limiter.check(key, per_second)
    if wait is not None:
        raise RateLimited("too_many_requests", wait)


def team_call(who: Authenticated) -> TeamPrincipal:
    if who.team is None:
        raise BadRequest(USER_TOKEN_ON_TEAM_ROUTE)
    return who.team


async def user_call(services: Services, route: RouteSpec, who: Authenticated, request: Request) -> Acting:
    selected = _selection(request)
    if who.team is None:
        assert who.account is not None
        if selected is not None:
            # Dropbox's own 400 text for a user-linked app that sends it (as a client reported it).
            which = "user" if selected[0] == SELECT_USER else "admin"
            raise BadRequest(f"Unexpected select {which} header. Your app does not have permission to use this feature")
        return Acting(who.account, who.scopes)
    if selected is None:
        raise BadRequest(TEAM_TOKEN_ON_USER_ROUTE)
    header, member_id = selected
    if SELECT_SCOPE not in who.scopes:
        raise AuthFailure("missing_scope", SELECT_SCOPE)
    if not member_id:
        raise BadRequest(f'Invalid "{header}" header: expecting a team member id ("dbmid:...").')
    if header == SELECT_USER:
        return Acting(await services.teams.select(who.team, member_id, admin=False), who.scopes)
    if route.select_admin_mode is None:
        raise BadRequest(f'This API function does not accept the "{SELECT_ADMIN}" header; '
                         f'use "{SELECT_USER}" to act as a team member.')
    admin = await services.teams.select(who.team, member_id, admin=True)
    return Acting(admin, who.scopes, route.select_admin_mode)
