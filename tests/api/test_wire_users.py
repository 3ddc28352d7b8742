"""users/get_account, users/get_account_batch and users/features/get_values on the wire."""

from __future__ import annotations

import pytest
from _apiwire import Api, auth_error, bad_input, ok_json, route_error
from dropbox import users

pytestmark = pytest.mark.api

GET = "users/get_account"
BATCH = "users/get_account_batch"
FEATURES = "users/features/get_values"
MISSING = "dbid:" + "Z" * 35


def _basic(account, given: str = "Test", surname: str = "User") -> dict:
    return {
        "account_id": account.account_id,
        "name": {"given_name": given, "surname": surname, "familiar_name": given,
                 "display_name": f"{given} {surname}", "abbreviated_name": given[0] + surname[0]},
        "email": account.email, "email_verified": True, "disabled": False, "is_teammate": False,
    }


def test_get_account_exact_json(api: Api, shared_account) -> None:
    body = ok_json(api.rpc(GET, {"account_id": shared_account.account_id}), users.BasicAccount_validator)
    assert body == _basic(shared_account)


def test_get_account_of_another_user_matches_their_current_account(api: Api, http, account) -> None:
    body = ok_json(api.rpc(GET, {"account_id": account.account_id}), users.BasicAccount_validator)
    mine = Api(http, account.token).current_account()
    assert body == {k: mine[k] for k in ("account_id", "name", "email", "email_verified", "disabled")} | {
        "is_teammate": False}


def test_get_account_unknown_is_no_account(api: Api) -> None:
    r = api.rpc(GET, {"account_id": MISSING})
    assert route_error(r, users.GetAccountError_validator, "no_account") == {".tag": "no_account"}
    assert r.json()["error_summary"].startswith("no_account/")


@pytest.mark.parametrize("arg", [{}, {"account_id": "dbid:short"}, {"account_id": "x" * 41},
                                 {"account_id": 5}, {"account_id": MISSING, "extra": 1}])
def test_get_account_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(GET, arg), GET)


def test_get_account_needs_sharing_read(api: Api, server) -> None:
    acct = server.new_account(scopes=["account_info.read"])
    r = api.rpc(GET, {"account_id": acct.account_id}, token=acct.token)
    assert auth_error(r, "missing_scope")["required_scope"] == "sharing.read"


def test_get_account_batch_in_request_order(api: Api, shared_account, account) -> None:
    ids = [account.account_id, shared_account.account_id, account.account_id]
    body = ok_json(api.rpc(BATCH, {"account_ids": ids}), users.GetAccountBatchResult_validator)
    assert body == [_basic(account), _basic(shared_account), _basic(account)]


def test_get_account_batch_names_the_missing_id(api: Api, shared_account) -> None:
    r = api.rpc(BATCH, {"account_ids": [shared_account.account_id, MISSING]})
    err = route_error(r, users.GetAccountBatchError_validator, "no_account")
    assert err == {".tag": "no_account", "no_account": MISSING}


@pytest.mark.parametrize("arg", [{"account_ids": []}, {}, {"account_ids": "dbid:x"}, {"account_ids": ["short"]}])
def test_get_account_batch_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(BATCH, arg), BATCH)


def test_features_values_in_request_order(api: Api) -> None:
    names = ["file_locking", "paper_as_files", "team_shared_dropbox", "distinct_member_home", "file_locking"]
    body = ok_json(api.rpc(FEATURES, {"features": [{".tag": n} for n in names]}),
                   users.UserFeaturesGetValuesBatchResult_validator)
    assert body == {"values": [{".tag": n, n: {".tag": "enabled", "enabled": False}} for n in names]}


def test_features_accept_bare_tags(api: Api) -> None:
    body = ok_json(api.rpc(FEATURES, {"features": ["paper_as_files"]}))
    assert body == {"values": [{".tag": "paper_as_files", "paper_as_files": {".tag": "enabled", "enabled": False}}]}


def test_features_empty_list_is_a_route_error(api: Api) -> None:
    r = api.rpc(FEATURES, {"features": []})
    assert route_error(r, users.UserFeaturesGetValuesBatchError_validator, "empty_features_list") == {
        ".tag": "empty_features_list"}


@pytest.mark.parametrize("arg", [{}, {"features": [{".tag": "no_such_feature"}]}, {"features": ["other"]},
                                 {"features": "paper_as_files"}])
def test_features_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(FEATURES, arg), FEATURES)
