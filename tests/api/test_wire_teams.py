"""Teams on the wire: the exact 400/401 answers to Select-User / Select-Admin and token kinds, the 403
data transport body, 429 bodies and Retry-After, 422 TeamRootInfo, and team route results decoded
strictly with the SDK's own validators."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from _apiwire import Api, auth_error, bad_input, describe, ok_json, request_id
from dropbox import auth, common, team, users
from dropbox import stone_serializers as ss

pytestmark = pytest.mark.api

SELECT_USER = "Dropbox-API-Select-User"
SELECT_ADMIN = "Dropbox-API-Select-Admin"


@dataclass
class Team:
    name: str
    token: str
    admin_id: str
    member_id: str
    member: Any
    folder_ns: str


def _team(server: Any, *, limit: int | None = None, rate: str | None = None) -> Team:
    name = f"Wire {secrets.token_hex(3)}"
    server.cli("team", "create", name)
    admin, member = server.new_account(name="Ann Admin"), server.new_account(name="Bob Member")
    admin_id = server.cli("team", "add-member", name, admin.email, "--admin").strip().splitlines()[-1]
    member_id = server.cli("team", "add-member", name, member.email).strip().splitlines()[-1]
    folder_ns = server.cli("team", "folder", "create", name, "Shared").strip().splitlines()[-1]
    if limit is not None:
        server.cli("team", "set-limit", name, "--data-transport-calls", str(limit))
    args = ["token", "create", "--team", name] + (["--rate-limit", rate] if rate else [])
    token = server.cli(*args).strip().splitlines()[-1]
    return Team(name, token, admin_id, member_id, member, folder_ns)


@pytest.fixture(scope="module")
def acme(server: Any) -> Team:
    return _team(server)


@pytest.fixture()
def tapi(http: httpx.Client, acme: Team) -> Api:
    return Api(http, acme.token)


def test_team_token_on_a_user_route_without_select_user(tapi: Api) -> None:
    text = bad_input(tapi.rpc("users/get_current_account", None), "users/get_current_account")
    assert text == (
        'Error in call to API function "users/get_current_account": This API function operates on a single '
        "Dropbox account, but the OAuth 2 access token you provided is for an entire Dropbox Business team.  "
        "Since your API app key has team member file access permissions, you can operate on a team member's "
        'Dropbox by providing the "Dropbox-API-Select-User" HTTP header or "select_user" URL parameter to '
        "specify the exact user <https://www.dropbox.com/developers/documentation/http/teams>.")


def test_user_token_on_a_team_route(api: Api) -> None:
    text = bad_input(api.rpc("team/get_info", None), "team/get_info")
    assert text.endswith(': This is a DfB team management function.  The OAuth 2 access token you provided is '
                         'for a specific Dropbox user account and does not work with this function.')


def test_user_token_with_select_headers_is_refused(api: Api) -> None:
    for header in (SELECT_USER, SELECT_ADMIN):
        bad_input(api.rpc("users/get_current_account", None, headers={header: "dbmid:x"}),
                  "users/get_current_account")


def test_invalid_select_user_and_admin_are_401(tapi: Api, acme: Team) -> None:
    r = tapi.rpc("users/get_current_account", None, headers={SELECT_USER: "dbmid:nobody"})
    assert json.loads(r.content) == {"error_summary": "invalid_select_user/...",
                                     "error": {".tag": "invalid_select_user"}}
    auth_error(r, "invalid_select_user")
    r = tapi.rpc("files/list_folder", {"path": ""}, headers={SELECT_ADMIN: acme.member_id})  # not an admin
    auth_error(r, "invalid_select_admin")
    r = tapi.rpc("files/list_folder", {"path": ""}, headers={SELECT_ADMIN: "dbmid:nobody"})
    auth_error(r, "invalid_select_admin")


def test_select_header_edge_cases_are_400(tapi: Api, acme: Team) -> None:
    both = {SELECT_USER: acme.member_id, SELECT_ADMIN: acme.admin_id}
    bad_input(tapi.rpc("users/get_current_account", None, headers=both), "users/get_current_account")
    bad_input(tapi.rpc("users/get_current_account", None, headers={SELECT_USER: ""}), "users/get_current_account")
    # users/get_space_usage has no select_admin_mode attribute.
    text = bad_input(tapi.rpc("users/get_space_usage", None, headers={SELECT_ADMIN: acme.admin_id}),
                     "users/get_space_usage")
    assert SELECT_ADMIN in text


def test_select_user_by_url_parameter(tapi: Api, acme: Team) -> None:
    r = tapi.rpc("users/get_current_account", None, params={"select_user": acme.member_id})
    body = ok_json(r, users.FullAccount_validator)
    assert body["team_member_id"] == acme.member_id and body["root_info"][".tag"] == "team"


def test_team_scope_missing_is_401(server: Any, http: httpx.Client, acme: Team) -> None:
    narrow = server.cli("token", "create", "--team", acme.name, "--scope", "members.read").strip().splitlines()[-1]
    api = Api(http, narrow)
    r = api.rpc("team/get_info", None)
    err = auth_error(r, "missing_scope")
    assert err == {".tag": "missing_scope", "required_scope": "team_info.read"}
    ok_json(api.rpc("team/members/list_v2", {}), team.MembersListV2Result_validator)
    r = api.rpc("users/get_current_account", None, headers={SELECT_USER: acme.member_id})
    assert auth_error(r, "missing_scope")["required_scope"] == "account_info.read"


def test_team_route_results_decode_strictly(tapi: Api, acme: Team) -> None:
    ok_json(tapi.rpc("team/get_info", None), team.TeamGetInfoResult_validator)
    page = ok_json(tapi.rpc("team/members/list_v2", {"limit": 1}), team.MembersListV2Result_validator)
    assert page["has_more"] is True
    ok_json(tapi.rpc("team/members/list/continue_v2", {"cursor": page["cursor"]}), team.MembersListV2Result_validator)
    ok_json(tapi.rpc("team/namespaces/list", {}), team.TeamNamespacesListResult_validator)
    got = ok_json(tapi.rpc("team/members/get_info_v2", {"members": [{".tag": "team_member_id", "team_member_id":
                                                                      acme.member_id}]}),
                  team.MembersGetInfoV2Result_validator)
    assert got["members_info"][0][".tag"] == "member_info"
    ok_json(tapi.rpc("team/token/get_authenticated_admin", None), team.TokenGetAuthenticatedAdminResult_validator)
    features = ok_json(tapi.rpc("team/features/get_values", {"features": ["upload_api_rate_limit"]}),
                       team.FeaturesGetValuesBatchResult_validator)
    assert features == {"values": [{".tag": "upload_api_rate_limit",
                                    "upload_api_rate_limit": {".tag": "unlimited"}}]}
    r = tapi.rpc("team/namespaces/list/continue", {"cursor": "bogus"})
    assert r.status_code == 409, describe(r)
    assert json.loads(r.content) == {"error_summary": "invalid_cursor/...", "error": {".tag": "invalid_cursor"}}


def test_invalid_root_for_a_member_carries_team_root_info(tapi: Api, acme: Team) -> None:
    me = ok_json(tapi.rpc("users/get_current_account", None, headers={SELECT_USER: acme.member_id}))
    r = tapi.rpc("files/list_folder", {"path": ""}, headers={
        SELECT_USER: acme.member_id, "Dropbox-API-Path-Root": json.dumps({".tag": "root", "root": "1"})})
    assert r.status_code == 422, describe(r)
    request_id(r)
    body = json.loads(r.content)
    ss.json_compat_obj_decode(common.PathRootError_validator, body["error"], strict=True)
    assert body == {"error_summary": "invalid_root/...", "error": {".tag": "invalid_root", "invalid_root": {
        ".tag": "team", "root_namespace_id": me["root_info"]["root_namespace_id"],
        "home_namespace_id": me["root_info"]["home_namespace_id"], "home_path": "/Bob Member"}}}


def test_transport_limit_403_body_is_exact(server: Any, http: httpx.Client) -> None:
    t = _team(server, limit=1)
    api = Api(http, t.token)
    sel = {SELECT_USER: t.member_id}
    ok_json(api.content("files/upload_session/start", {"close": True}, b"a", headers=sel))
    r = api.content("files/upload_session/start", {"close": True}, b"b", headers=sel)
    assert r.status_code == 403, describe(r)
    assert r.headers["content-type"] == "application/json"
    request_id(r)
    assert r.content == json.dumps({
        "error_summary": "invalid_account_type/feature/.",
        "error": {".tag": "invalid_account_type", "invalid_account_type": {".tag": "feature"}},
        "user_message": {"locale": "en", "text": (
            "Your team has used all of its data transport API calls for the month. Your monthly limit will reset "
            "on the 1st day of every month. If you'd like to move to a plan with unlimited API calls, please "
            "contact sales.")}}).encode()
    ss.json_compat_obj_decode(auth.AccessError_validator, json.loads(r.content)["error"], strict=True)
    features = ok_json(api.rpc("team/features/get_values", {"features": [{".tag": "upload_api_rate_limit"}]}))
    assert features["values"][0]["upload_api_rate_limit"] == {".tag": "limit", "limit": 1}


def test_rate_limit_429_json_or_text_by_accept(server: Any, http: httpx.Client) -> None:
    acct = server.new_account()
    token = server.cli("token", "create", acct.email, "--rate-limit", "1/s").strip().splitlines()[-1]
    api = Api(http, token)
    ok_json(api.rpc("users/get_current_account", None))
    r = api.rpc("users/get_current_account", None, headers={"Accept": "*/*"})
    assert r.status_code == 429, describe(r)
    assert r.headers["content-type"] == "application/json" and r.headers["retry-after"] == "1"
    body = json.loads(r.content)
    assert body == {"error_summary": "too_many_requests/",
                    "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 1}}
    ss.json_compat_obj_decode(auth.RateLimitError_validator, body["error"], strict=True)
    r = api.rpc("users/get_current_account", None, headers={"Accept": "text/plain"})
    assert r.status_code == 429 and r.headers["content-type"].startswith("text/plain"), describe(r)
    assert r.headers["retry-after"] == "1"


def test_rate_limit_is_per_selected_member(server: Any, http: httpx.Client) -> None:
    t = _team(server, rate="1/s")
    api = Api(http, t.token)
    ok_json(api.rpc("users/get_current_account", None, headers={SELECT_USER: t.member_id}))
    assert api.rpc("users/get_current_account", None, headers={SELECT_USER: t.member_id}).status_code == 429
    ok_json(api.rpc("users/get_current_account", None, headers={SELECT_USER: t.admin_id}))
