"""Dropbox-API-Path-Root header and ns:<id> paths on the wire (422 PathRootError, 400 for malformed)."""

from __future__ import annotations

import json

import pytest
from _apiwire import Api, bad_input, describe, ok_json, request_id
from dropbox import common, files
from dropbox import stone_serializers as ss

pytestmark = pytest.mark.api

PR = "Dropbox-API-Path-Root"


@pytest.fixture()
def me(api: Api) -> dict:
    return api.current_account()["root_info"]


def path_root_error(r) -> dict:
    assert r.status_code == 422, describe(r)
    assert r.headers.get("content-type") == "application/json", describe(r)
    request_id(r)
    body = json.loads(r.content)
    assert set(body) <= {"error_summary", "error", "user_message"} and "error" in body, body
    assert isinstance(body["error_summary"], str), body
    # The SDK decodes 422 bodies strictly.
    ss.json_compat_obj_decode(common.PathRootError_validator, body["error"], strict=True)
    assert body["error_summary"].startswith(body["error"][".tag"] + "/"), body
    return body["error"]


def hdr(obj) -> dict:
    return {PR: json.dumps(obj)}


def test_home_path_root(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/h.txt", b"h")
    r = api.rpc("files/get_metadata", {"path": f"{folder}/h.txt"}, headers=hdr({".tag": "home"}))
    assert ok_json(r, files.Metadata_validator)["path_display"] == f"{folder}/h.txt"


def test_bare_string_home_path_root(api: Api) -> None:
    r = api.rpc("files/list_folder", {"path": ""}, headers={PR: '"home"'})
    ok_json(r, files.ListFolderResult_validator)


def test_root_path_root_matching(api: Api, me: dict, folder: str) -> None:
    api.upload_ok(f"{folder}/r.txt", b"r")
    r = api.rpc("files/get_metadata", {"path": f"{folder}/r.txt"},
                headers=hdr({".tag": "root", "root": me["root_namespace_id"]}))
    ok_json(r, files.Metadata_validator)


def test_root_path_root_mismatch_is_422_invalid_root(api: Api, me: dict) -> None:
    r = api.rpc("files/list_folder", {"path": ""}, headers=hdr({".tag": "root", "root": "999999999"}))
    err = path_root_error(r)
    assert err == {".tag": "invalid_root",
                   "invalid_root": {".tag": me[".tag"], "root_namespace_id": me["root_namespace_id"],
                                    "home_namespace_id": me["home_namespace_id"]}}


def test_invalid_root_on_content_routes(api: Api, folder: str) -> None:
    r = api.content("files/upload", {"path": f"{folder}/x"}, b"x",
                    headers=hdr({".tag": "root", "root": "999999999"}))
    assert path_root_error(r)[".tag"] == "invalid_root"
    r = api.download({"path": f"{folder}/x"}, headers=hdr({".tag": "root", "root": "999999999"}))
    assert path_root_error(r)[".tag"] == "invalid_root"


def test_namespace_id_own_root(api: Api, me: dict, folder: str) -> None:
    api.upload_ok(f"{folder}/n.txt", b"n")
    r = api.rpc("files/get_metadata", {"path": f"{folder}/n.txt"},
                headers=hdr({".tag": "namespace_id", "namespace_id": me["root_namespace_id"]}))
    ok_json(r, files.Metadata_validator)


def test_namespace_id_foreign_is_422_no_permission(api: Api, http, account) -> None:
    other_ns = Api(http, account.token).current_account()["root_info"]["root_namespace_id"]
    r = api.rpc("files/list_folder", {"path": ""},
                headers=hdr({".tag": "namespace_id", "namespace_id": other_ns}))
    assert path_root_error(r) == {".tag": "no_permission"}


def test_namespace_id_unknown_is_422_no_permission(api: Api) -> None:
    r = api.rpc("files/list_folder", {"path": ""},
                headers=hdr({".tag": "namespace_id", "namespace_id": "123456789012"}))
    assert path_root_error(r) == {".tag": "no_permission"}


def test_path_root_header_name_is_case_insensitive(api: Api) -> None:
    r = api.rpc("files/list_folder", {"path": ""},
                headers={"dropbox-api-path-root": json.dumps({".tag": "root", "root": "999999999"})})
    assert path_root_error(r)[".tag"] == "invalid_root"
    r = api.rpc("files/list_folder", {"path": ""},
                headers={"Dropbox-Api-Path-Root": json.dumps({".tag": "root", "root": "999999999"})})
    assert path_root_error(r)[".tag"] == "invalid_root"


@pytest.mark.parametrize("value", ["not json", "{}", '{".tag": "bogus"}', '{".tag": "root"}',
                                   '{".tag": "namespace_id"}', '{".tag": "root", "root": 5}', "[]", "5",
                                   '{".tag": "home", "extra": 1}', '"other"'])
def test_malformed_path_root_is_400(api: Api, value: str) -> None:
    r = api.rpc("files/list_folder", {"path": ""}, headers={PR: value})
    bad_input(r, "files/list_folder")


def test_ns_path_in_own_namespace(api: Api, me: dict, folder: str) -> None:
    ns = me["root_namespace_id"]
    md = ok_json(api.content("files/upload", {"path": f"ns:{ns}{folder}/ns.txt"}, b"ns"),
                 files.FileMetadata_validator)
    assert md["path_display"] == f"{folder}/ns.txt"
    got = api.metadata_ok(f"ns:{ns}{folder}/ns.txt")
    assert got["id"] == md["id"]
    r = api.rpc("files/list_folder", {"path": f"ns:{ns}{folder}"})
    assert [e["name"] for e in ok_json(r, files.ListFolderResult_validator)["entries"]] == ["ns.txt"]
    r = api.download({"path": f"ns:{ns}{folder}/ns.txt"})
    assert r.status_code == 200 and r.content == b"ns", describe(r)


def test_ns_path_in_foreign_namespace_is_not_served(api: Api, http, account) -> None:
    other = Api(http, account.token)
    other_ns = other.current_account()["root_info"]["root_namespace_id"]
    other.upload_ok("/secret.txt", b"secret")
    r = api.download({"path": f"ns:{other_ns}/secret.txt"})
    assert r.status_code in (409, 422), describe(r)
    assert b"secret" not in r.content or r.status_code != 200
