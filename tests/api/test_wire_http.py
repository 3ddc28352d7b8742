"""HTTP-level wire facts: routing, auth, content types, request ids, header handling."""

from __future__ import annotations

import json

import pytest
from _apiwire import Api, auth_error, bad_input, describe, ok_json, ok_void, request_id
from dropbox import check, files, users

pytestmark = pytest.mark.api


# -- request ids ----------------------------------------------------------------------------------

def test_request_id_on_every_kind_of_response(api: Api, http) -> None:
    responses = [
        api.rpc("check/user", {"query": "x"}),                                   # 200
        api.rpc("files/get_metadata", {"path": "/does-not-exist"}),              # 409
        api.rpc("check/user", {"query": "x"}, token="not-a-token"),               # 401
        api.rpc("check/user", raw=b"{not json"),                                 # 400
        api.rpc("files/no_such_route", {}),                                      # 400 unknown route
        http.post("/2/check/user", content=b'{"query": "x"}',
                  headers={"Content-Type": "application/json"}),                # 400 no auth
    ]
    ids = [request_id(r) for r in responses]
    assert len(set(ids)) == len(ids), ids


def test_request_ids_differ_between_requests(api: Api) -> None:
    a = api.rpc("check/user", {"query": "a"})
    b = api.rpc("check/user", {"query": "a"})
    assert request_id(a) != request_id(b)


# -- routing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["files/no_such_route", "nope/user", "files/upload_session/start_v9",
                                   "files/get_metadata_v2"])
def test_unknown_route_is_400_text(api: Api, route: str) -> None:
    bad_input(api.rpc(route, {}))


def test_unknown_route_without_auth_is_not_5xx(http) -> None:
    r = http.post("/2/files/no_such_route", content=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400, describe(r)
    assert r.headers["content-type"].startswith("text/plain")


def test_get_on_rpc_route_is_a_client_error(api: Api, http) -> None:
    r = http.get("/2/check/user", headers=api.auth())
    assert 400 <= r.status_code < 500, describe(r)
    request_id(r)


# -- authentication --------------------------------------------------------------------------------

def test_missing_authorization_is_400_text(http) -> None:
    r = http.post("/2/users/get_current_account", content=b"null",
                  headers={"Content-Type": "application/json"})
    text = bad_input(r, "users/get_current_account")
    assert "authorization" in text.lower()


def test_missing_authorization_on_upload_route_is_400_text(http) -> None:
    r = http.post("/2/files/upload_session/start", content=b"abc",
                  headers={"Content-Type": "application/octet-stream", "Dropbox-API-Arg": "{}"})
    bad_input(r, "files/upload_session/start")


@pytest.mark.parametrize("route,body", [
    ("users/get_current_account", b"null"),
    ("check/user", b'{"query": "q"}'),
    ("files/get_metadata", b'{"path": "/x"}'),
    ("files/list_folder", b'{"path": ""}'),
    ("files/upload_session/finish_batch/check", b'{"async_job_id": "j"}'),
])
def test_unknown_token_is_401_invalid_access_token(api: Api, route: str, body: bytes) -> None:
    auth_error(api.rpc(route, raw=body, token="definitely-not-a-valid-token"), "invalid_access_token")


def test_unknown_token_on_upload_route_is_401(api: Api) -> None:
    auth_error(api.content("files/upload_session/start", {}, b"x", token="bogus-token"),
               "invalid_access_token")


def test_unknown_token_on_download_route_is_401(api: Api) -> None:
    r = api.http.post("/2/files/download", headers={"Authorization": "Bearer bogus",
                                                     "Dropbox-API-Arg": '{"path": "/x"}'})
    auth_error(r, "invalid_access_token")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "token-without-scheme", "Bearer two tokens"])
def test_malformed_authorization_header_is_never_5xx(http, value: str) -> None:
    r = http.post("/2/check/user", content=b'{"query": "q"}',
                  headers={"Content-Type": "application/json", "Authorization": value})
    # Dropbox answers a malformed value with 400 text ("Invalid authorization value in HTTP header ...");
    # an unrecognised token is a 401 JSON invalid_access_token. Either way, never 5xx and the right body.
    if r.status_code == 400:
        bad_input(r, "check/user")
    else:
        auth_error(r, "invalid_access_token")


def test_authorization_url_parameter(api: Api, http) -> None:
    r = http.post("/2/check/user", params={"authorization": f"Bearer {api.token}"},
                  content=b'{"query": "via-url"}', headers={"Content-Type": "application/json"})
    assert ok_json(r, check.EchoResult_validator) == {"result": "via-url"}


def test_authorization_header_name_is_case_insensitive(api: Api, http) -> None:
    r = http.post("/2/check/user", content=b'{"query": "x"}',
                  headers={"content-type": "application/json", "AUTHORIZATION": f"Bearer {api.token}"})
    ok_json(r, check.EchoResult_validator)


# -- scopes ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def account_only_token(server) -> str:
    return server.new_account(scopes=["account_info.read"]).token


@pytest.fixture(scope="module")
def files_only_token(server) -> str:
    return server.new_account(scopes=["files.metadata.read"]).token


def test_missing_scope_on_upload(api: Api, account_only_token: str) -> None:
    r = api.content("files/upload", {"path": "/a.txt"}, b"hello", token=account_only_token)
    err = auth_error(r, "missing_scope")
    assert err == {".tag": "missing_scope", "required_scope": "files.content.write"}


@pytest.mark.parametrize("route", ["files/upload_session/start", "files/upload_session/append_v2",
                                   "files/upload_session/finish"])
def test_missing_scope_on_session_content_routes(api: Api, account_only_token: str, route: str) -> None:
    arg = {
        "files/upload_session/start": {},
        "files/upload_session/append_v2": {"cursor": {"session_id": "s", "offset": 0}},
        "files/upload_session/finish": {"cursor": {"session_id": "s", "offset": 0},
                                        "commit": {"path": "/a.txt"}},
    }[route]
    err = auth_error(api.content(route, arg, b"", token=account_only_token), "missing_scope")
    assert err["required_scope"] == "files.content.write"


@pytest.mark.parametrize("route,arg", [
    ("files/upload_session/start_batch", {"num_sessions": 1}),
    ("files/upload_session/finish_batch_v2", {"entries": []}),
])
def test_missing_scope_on_session_rpc_routes(api: Api, account_only_token: str, route: str, arg) -> None:
    err = auth_error(api.rpc(route, arg, token=account_only_token), "missing_scope")
    assert err["required_scope"] == "files.content.write"


def test_missing_scope_on_get_metadata(api: Api, account_only_token: str) -> None:
    err = auth_error(api.rpc("files/get_metadata", {"path": "/x"}, token=account_only_token),
                     "missing_scope")
    assert err["required_scope"] == "files.metadata.read"


def test_missing_scope_on_list_folder(api: Api, account_only_token: str) -> None:
    err = auth_error(api.rpc("files/list_folder", {"path": ""}, token=account_only_token), "missing_scope")
    assert err["required_scope"] == "files.metadata.read"


def test_missing_scope_on_download(api: Api, files_only_token: str) -> None:
    r = api.http.post("/2/files/download", headers={"Authorization": f"Bearer {files_only_token}",
                                                     "Dropbox-API-Arg": '{"path": "/x"}'})
    err = auth_error(r, "missing_scope")
    assert err["required_scope"] == "files.content.read"


def test_missing_scope_on_get_current_account(api: Api, files_only_token: str) -> None:
    err = auth_error(api.rpc("users/get_current_account", None, token=files_only_token), "missing_scope")
    assert err["required_scope"] == "account_info.read"


def test_scoped_token_can_use_its_scope(api: Api, account_only_token: str, files_only_token: str) -> None:
    ok_json(api.rpc("users/get_current_account", None, token=account_only_token), users.FullAccount_validator)
    r = api.rpc("files/list_folder", {"path": ""}, token=files_only_token)
    ok_json(r, files.ListFolderResult_validator)


# -- content types ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8"])
def test_rpc_accepts_json_content_types(api: Api, ctype: str) -> None:
    r = api.rpc("check/user", {"query": "ct"}, content_type=ctype)
    assert ok_json(r, check.EchoResult_validator) == {"result": "ct"}


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/octet-stream",
                                   "application/x-www-form-urlencoded", "application/jsonx"])
def test_rpc_rejects_other_content_types(api: Api, ctype: str | None) -> None:
    bad_input(api.rpc("check/user", {"query": "ct"}, content_type=ctype), "check/user")


@pytest.mark.parametrize("ctype", ["application/json", "text/plain", "multipart/form-data; boundary=x"])
def test_upload_rejects_non_octet_stream_content_types(api: Api, ctype: str) -> None:
    bad_input(api.content("files/upload_session/start", {}, b"abc", content_type=ctype),
              "files/upload_session/start")


def test_rpc_chunked_json_body(api: Api, http) -> None:
    r = http.post("/2/check/user", content=iter([b'{"que', b'ry": "chu', b'nked"}']),
                  headers={**api.auth(), "Content-Type": "application/json"})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert ok_json(r, check.EchoResult_validator) == {"result": "chunked"}


def test_rpc_200_content_type_is_exactly_application_json(api: Api) -> None:
    r = api.rpc("check/user", {"query": "x"})
    assert r.headers["content-type"] == "application/json"


# -- request-body decoding -------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"str"', b"42", b"true",
                                  b'{"query": 5}', b'{"query": null}', b'{"query": "x", "extra": 1}',
                                  b"\xff\xfe\x00", b'{"query": "x"} trailing'])
def test_check_user_bad_bodies_are_400(api: Api, body: bytes) -> None:
    bad_input(api.rpc("check/user", raw=body), "check/user")


def test_check_user_query_limit(api: Api) -> None:
    assert ok_json(api.rpc("check/user", {"query": "q" * 500}))["result"] == "q" * 500
    bad_input(api.rpc("check/user", {"query": "q" * 501}), "check/user")


@pytest.mark.parametrize("body", [b"{}", b"null"], ids=["empty-object", "null"])
def test_check_user_default_query(api: Api, body: bytes) -> None:
    # EchoArg.query defaults to "". stone decodes `null` as the default of an all-defaults struct.
    assert ok_json(api.rpc("check/user", raw=body), check.EchoResult_validator) == {"result": ""}


def test_check_user_empty_body_is_not_json(api: Api) -> None:
    # Only Void arguments accept an empty body (as `null`); a struct argument needs JSON.
    r = api.rpc("check/user", raw=b"")
    bad_input(r, "check/user")
    assert "could not decode input as JSON" in r.text


def test_rpc_body_escaped_and_raw_utf8_both_decode(api: Api) -> None:
    q = "héllo 😀 ☺"
    r1 = api.rpc("check/user", raw=json.dumps({"query": q}).encode())
    r2 = api.rpc("check/user", raw=json.dumps({"query": q}, ensure_ascii=False).encode())
    assert ok_json(r1)["result"] == q
    assert ok_json(r2)["result"] == q


def test_rpc_response_body_is_valid_utf8_json(api: Api) -> None:
    q = "naïve ☃"
    r = api.rpc("check/user", {"query": q})
    assert json.loads(r.content.decode("utf-8")) == {"result": q}


# -- void-argument routes --------------------------------------------------------------------------

@pytest.mark.parametrize("body,ctype", [
    (b"null", "application/json"),            # Python SDK
    (b"", None),                               # Go and JS SDKs: empty body, no content type
    (b"", "application/json"),                 # curl users
])
def test_get_current_account_void_arg_forms(api: Api, body: bytes, ctype: str | None) -> None:
    r = api.rpc("users/get_current_account", raw=body, content_type=ctype)
    ok_json(r, users.FullAccount_validator)


def test_get_current_account_rejects_non_null_arg(api: Api) -> None:
    bad_input(api.rpc("users/get_current_account", raw=b'{"x": 1}'), "users/get_current_account")


def test_void_result_is_null(api: Api) -> None:
    sid = api.start_ok(b"")
    ok_void(api.content("files/upload_session/append_v2",
                        {"cursor": {"session_id": sid, "offset": 0}}, b"abc"))


# -- misc headers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Dropbox-API-Arg", "dropbox-api-arg", "DROPBOX-API-ARG", "Dropbox-Api-Arg"])
def test_arg_header_name_is_case_insensitive(api: Api, name: str) -> None:
    r = api.content("files/upload_session/start", {"close": False}, b"abc", header_name=name)
    ok_json(r, files.UploadSessionStartResult_validator)


def test_user_agent_and_unknown_headers_are_ignored(api: Api) -> None:
    r = api.rpc("check/user", {"query": "x"}, headers={"User-Agent": "MyApp/1.0/OfficialDropboxPythonSDKv2/12.2.4",
                                                      "X-Something-Else": "1"})
    ok_json(r, check.EchoResult_validator)
