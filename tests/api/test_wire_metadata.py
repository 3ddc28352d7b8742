"""Metadata routes on the wire: users/get_current_account, files/get_metadata, files/list_folder(+continue)."""

from __future__ import annotations

import pytest
from _apiwire import TS_RE, Api, bad_input, check_file_metadata, describe, ok_json, route_error
from dropbox import files

pytestmark = pytest.mark.api

GET_METADATA = "files/get_metadata"
LIST = "files/list_folder"
CONTINUE = "files/list_folder/continue"


# -- users/get_current_account --------------------------------------------------------------------

def test_get_current_account_shape(http, account) -> None:
    api = Api(http, account.token)
    body = api.current_account()
    assert body["account_id"] == account.account_id
    assert len(body["account_id"]) == 40 and body["account_id"].startswith("dbid:")
    assert body["email"] == account.email
    assert body["name"]["display_name"] == "Test User"
    assert body["account_type"][".tag"] in ("basic", "pro", "business")
    ri = body["root_info"]
    assert ri[".tag"] in ("user", "team")
    assert ri["root_namespace_id"] and ri["home_namespace_id"]
    assert isinstance(body["disabled"], bool) and isinstance(body["email_verified"], bool)


def test_accounts_are_distinct(http, account, shared_account) -> None:
    a = Api(http, account.token).current_account()
    b = Api(http, shared_account.token).current_account()
    assert a["account_id"] != b["account_id"]
    assert a["root_info"]["root_namespace_id"] != b["root_info"]["root_namespace_id"]


# -- get_metadata ---------------------------------------------------------------------------------

def test_get_metadata_file(api: Api, folder: str) -> None:
    path = f"{folder}/Report 2024.PDF"
    up = api.upload_ok(path, b"%PDF", client_modified="2024-02-03T04:05:06Z")
    md = api.metadata_ok(path)
    check_file_metadata(md, path=path, data=b"%PDF", tagged=True)
    assert {k: v for k, v in md.items() if k != ".tag"} == up


def test_get_metadata_folder(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/Sub Dir/x", b"x")
    md = api.metadata_ok(f"{folder}/Sub Dir")
    assert md[".tag"] == "folder"
    assert md["name"] == "Sub Dir"
    assert md["path_display"] == f"{folder}/Sub Dir"
    assert md["path_lower"] == f"{folder}/sub dir"
    assert md["id"].startswith("id:")
    assert set(md) <= {".tag", "name", "id", "path_lower", "path_display", "parent_shared_folder_id",
                       "preview_url", "shared_folder_id", "sharing_info", "property_groups"}


def test_get_metadata_by_id(api: Api, folder: str) -> None:
    up = api.upload_ok(f"{folder}/byid", b"id")
    md = api.metadata_ok(up["id"])
    assert md["path_display"] == f"{folder}/byid" and md["id"] == up["id"]


def test_get_metadata_case_insensitive(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/MiXeD.txt", b"m")
    md = api.metadata_ok(f"{folder}/mixed.TXT")
    assert md["name"] == "MiXeD.txt"
    assert md["path_lower"] == f"{folder}/mixed.txt"


def test_get_metadata_not_found(api: Api, folder: str) -> None:
    r = api.metadata(f"{folder}/nope")
    assert route_error(r, files.GetMetadataError_validator, "path", "not_found") == {
        ".tag": "path", "path": {".tag": "not_found"}}
    assert r.json()["error_summary"].startswith("path/not_found/")


def test_get_metadata_below_a_file_is_not_found(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/f", b"x")
    r = api.metadata(f"{folder}/f/child")
    err = route_error(r, files.GetMetadataError_validator, "path")
    assert err["path"][".tag"] in ("not_found", "not_folder"), err


@pytest.mark.parametrize("arg", [{"path": ""}, {"path": "/"}, {"path": "no-slash"}, {"path": 3}, {},
                                 {"path": "/x", "bogus": 1},
                                 {"path": "/x", "include_deleted": "no"}, {"path": "/x", "include_media_info": None},
                                 [], None])
def test_get_metadata_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(GET_METADATA, arg), GET_METADATA)


def test_get_metadata_known_optional_flags(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/flags", b"f")
    r = api.rpc(GET_METADATA, {"path": f"{folder}/flags", "include_media_info": False, "include_deleted": False,
                               "include_has_explicit_shared_members": False})
    ok_json(r, files.Metadata_validator)


# -- list_folder ----------------------------------------------------------------------------------

def test_list_folder_empty_root(http, account) -> None:
    api = Api(http, account.token)
    body = ok_json(api.rpc(LIST, {"path": ""}), files.ListFolderResult_validator)
    assert body["entries"] == [] and body["has_more"] is False
    assert isinstance(body["cursor"], str) and body["cursor"]


def test_list_folder_root_and_recursive(http, account) -> None:
    api = Api(http, account.token)
    api.upload_ok("/top.txt", b"t")
    api.upload_ok("/Dir/inner.txt", b"i")
    body = ok_json(api.rpc(LIST, {"path": ""}), files.ListFolderResult_validator)
    by_name = {e["name"]: e for e in body["entries"]}
    assert set(by_name) == {"top.txt", "Dir"}
    assert by_name["top.txt"][".tag"] == "file"
    check_file_metadata(by_name["top.txt"], path="/top.txt", data=b"t", tagged=True)
    assert by_name["Dir"][".tag"] == "folder" and by_name["Dir"]["path_display"] == "/Dir"
    assert body["has_more"] is False

    rec = ok_json(api.rpc(LIST, {"path": "", "recursive": True}), files.ListFolderResult_validator)
    paths = {e["path_display"] for e in rec["entries"]}
    assert paths == {"/top.txt", "/Dir", "/Dir/inner.txt"}


def test_list_folder_subfolder_and_pagination(api: Api, folder: str) -> None:
    names = [f"f{i:02d}" for i in range(7)]
    for n in names:
        api.upload_ok(f"{folder}/{n}", n.encode())
    seen: list[str] = []
    body = ok_json(api.rpc(LIST, {"path": folder, "limit": 3}), files.ListFolderResult_validator)
    assert len(body["entries"]) <= 3
    seen += [e["name"] for e in body["entries"]]
    rounds = 0
    while body["has_more"]:
        rounds += 1
        assert rounds < 20
        body = ok_json(api.rpc(CONTINUE, {"cursor": body["cursor"]}), files.ListFolderResult_validator)
        seen += [e["name"] for e in body["entries"]]
    assert sorted(seen) == names


def test_list_folder_continue_sees_new_entries(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/first", b"1")
    body = ok_json(api.rpc(LIST, {"path": folder}), files.ListFolderResult_validator)
    assert not body["has_more"]
    api.upload_ok(f"{folder}/second", b"2")
    nxt = ok_json(api.rpc(CONTINUE, {"cursor": body["cursor"]}), files.ListFolderResult_validator)
    assert [e["name"] for e in nxt["entries"]] == ["second"]


def test_list_folder_accepts_rclone_flags(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/x", b"x")
    r = api.rpc(LIST, {"path": folder, "recursive": False, "include_media_info": False,
                       "include_deleted": False, "include_has_explicit_shared_members": False,
                       "include_mounted_folders": False, "include_non_downloadable_files": False,
                       "include_restorable_info": False, "limit": 1000})
    assert [e["name"] for e in ok_json(r, files.ListFolderResult_validator)["entries"]] == ["x"]


def test_list_folder_by_id(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/d/x", b"x")
    fid = api.metadata_ok(f"{folder}/d")["id"]
    body = ok_json(api.rpc(LIST, {"path": fid}), files.ListFolderResult_validator)
    assert [e["name"] for e in body["entries"]] == ["x"]


def test_list_folder_not_found(api: Api, folder: str) -> None:
    r = api.rpc(LIST, {"path": f"{folder}/nope"})
    assert route_error(r, files.ListFolderError_validator, "path", "not_found") == {
        ".tag": "path", "path": {".tag": "not_found"}}


def test_list_folder_on_file_is_not_folder(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/file", b"x")
    r = api.rpc(LIST, {"path": f"{folder}/file"})
    assert route_error(r, files.ListFolderError_validator, "path", "not_folder") == {
        ".tag": "path", "path": {".tag": "not_folder"}}


@pytest.mark.parametrize("arg", [{}, {"path": "x"}, {"path": "/"}, {"path": "", "limit": 0},
                                 {"path": "", "limit": 2001}, {"path": "", "recursive": "yes"},
                                 {"path": "", "bogus": True}, None])
def test_list_folder_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(LIST, arg), LIST)


@pytest.mark.parametrize("cursor", ["garbage", "AAAAAAAA", "x" * 300])
def test_list_folder_continue_bad_cursor(api: Api, cursor: str) -> None:
    r = api.rpc(CONTINUE, {"cursor": cursor})
    # Dropbox answers an undecodable cursor with 400 text, or 409 reset for an expired one.
    if r.status_code == 409:
        route_error(r, files.ListFolderContinueError_validator)
    else:
        bad_input(r, CONTINUE)


def test_list_folder_cursor_is_per_account(api: Api, account, folder: str) -> None:
    api.upload_ok(f"{folder}/mine", b"x")
    cur = ok_json(api.rpc(LIST, {"path": folder}))["cursor"]
    r = Api(api.http, account.token).rpc(CONTINUE, {"cursor": cur})
    assert r.status_code in (400, 409), describe(r)
    assert b"mine" not in r.content


@pytest.mark.parametrize("arg", [{}, {"cursor": 5}, {"cursor": ""}, {"cursor": "c", "x": 1}, None])
def test_list_folder_continue_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(CONTINUE, arg), CONTINUE)


def test_list_folder_timestamps_format(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/ts", b"x")
    e = ok_json(api.rpc(LIST, {"path": folder}))["entries"][0]
    assert TS_RE.match(e["server_modified"]) and TS_RE.match(e["client_modified"])
