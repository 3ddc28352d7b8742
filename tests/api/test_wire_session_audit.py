"""Upload-session family: behaviours an outside conformance suite checks from Dropbox's documentation
that the other wire modules did not pin down (paths ending in whitespace, property_groups on a commit,
CORS pre-flight requests)."""

from __future__ import annotations

import json

import pytest
from _apiwire import Api, bad_input, check_file_metadata, content_hash, ok_json, request_id, route_error
from dropbox import files

pytestmark = pytest.mark.api

UPLOAD = "files/upload"
START = "files/upload_session/start"
FINISH = "files/upload_session/finish"
FB = "files/upload_session/finish_batch"
FB2 = "files/upload_session/finish_batch_v2"

MALFORMED_WRITE = {".tag": "path", "path": {".tag": "malformed_path"}}


def entry(sid: str, offset: int, path: str, **commit) -> dict:
    return {"cursor": {"session_id": sid, "offset": offset}, "commit": {"path": path, **commit}}


# -- "Paths may not end with a slash or whitespace" (HTTP docs, Path formats) ---------------------

@pytest.mark.parametrize("tail", [" ", "\t", "\u00a0", "\u3000"])
def test_write_path_ending_in_whitespace_is_malformed(api: Api, folder: str, tail: str) -> None:
    path = f"{folder}/name{tail}"
    r = api.content(UPLOAD, {"path": path}, b"x")
    err = route_error(r, files.UploadError_validator, "path", "malformed_path")
    assert err["reason"] == {".tag": "malformed_path"} and err["upload_session_id"], err
    assert r.json()["error_summary"].startswith("path/malformed_path/")

    sid = api.start_ok(b"abc", close=True)
    r = api.finish(sid, 3, path)
    assert route_error(r, files.UploadSessionFinishError_validator, "path", "malformed_path") == MALFORMED_WRITE
    res = ok_json(api.rpc(FB2, {"entries": [entry(sid, 3, path)]}), files.UploadSessionFinishBatchResult_validator)
    assert res == {"entries": [{".tag": "failure", "failure": MALFORMED_WRITE}]}
    # Nothing was written, and the session is still there to finish elsewhere.
    check_file_metadata(api.finish_ok(sid, 3, f"{folder}/name"), path=f"{folder}/name", data=b"abc")


def test_read_path_ending_in_whitespace_is_malformed(api: Api, folder: str) -> None:
    r = api.metadata(f"{folder}/x ")
    err = route_error(r, files.GetMetadataError_validator, "path", "malformed_path")
    assert err == {".tag": "path", "path": {".tag": "malformed_path"}}


def test_whitespace_inside_a_path_is_kept(api: Api, folder: str) -> None:
    path = f"{folder}/ lead and mid /a b.txt"
    check_file_metadata(api.upload_ok(path, b"ok"), path=path, data=b"ok")


# -- CommitInfo.property_groups -------------------------------------------------------------------
# localbox has no file-property templates (no file_properties routes), so every template a commit
# names "does not exist for the given identifier": TemplateError.template_not_found, reported as
# properties_error (UploadError, UploadSessionFinishError).  Before, the groups were silently dropped.

GROUP = {"template_id": "ptid:1a5n2i6d3OYEAAAAAAAAAYa", "fields": [{"name": "k", "value": "v"}]}
PROPERTIES_ERROR = {".tag": "properties_error",
                    "properties_error": {".tag": "template_not_found", "template_not_found": GROUP["template_id"]}}


def test_upload_with_unknown_property_template(api: Api, folder: str) -> None:
    r = api.content(UPLOAD, {"path": f"{folder}/p.txt", "property_groups": [GROUP]}, b"data")
    assert route_error(r, files.UploadError_validator, "properties_error", "template_not_found") == PROPERTIES_ERROR
    assert r.json()["error_summary"].startswith("properties_error/template_not_found/")
    assert api.metadata(f"{folder}/p.txt").status_code == 409  # nothing written


@pytest.mark.parametrize("groups", [[], None])
def test_empty_or_null_property_groups_are_accepted(api: Api, folder: str, groups) -> None:
    md = ok_json(api.content(UPLOAD, {"path": f"{folder}/p.txt", "property_groups": groups}, b"data"),
                 files.FileMetadata_validator)
    check_file_metadata(md, path=f"{folder}/p.txt", data=b"data")


def test_finish_with_unknown_property_template(api: Api, folder: str) -> None:
    sid = api.start_ok(b"abc", close=True)
    r = api.finish(sid, 3, f"{folder}/p.txt", property_groups=[GROUP])
    assert route_error(r, files.UploadSessionFinishError_validator, "properties_error",
                       "template_not_found") == PROPERTIES_ERROR
    # The session was not consumed.
    check_file_metadata(api.finish_ok(sid, 3, f"{folder}/p.txt"), data=b"abc")


@pytest.mark.parametrize("route", [FB, FB2])
def test_finish_batch_entry_with_unknown_property_template(api: Api, folder: str, route: str) -> None:
    bad = api.start_ok(b"bad", close=True)
    good = api.start_ok(b"good", close=True)
    arg = {"entries": [entry(bad, 3, f"{folder}/bad", property_groups=[GROUP]), entry(good, 4, f"{folder}/good")]}
    if route == FB:
        launch = ok_json(api.rpc(route, arg), files.UploadSessionFinishBatchLaunch_validator)
        res = api.poll_batch(launch["async_job_id"])
    else:
        res = ok_json(api.rpc(route, arg), files.UploadSessionFinishBatchResult_validator)
    assert res["entries"][0] == {".tag": "failure", "failure": PROPERTIES_ERROR}
    assert res["entries"][1][".tag"] == "success"


# -- CORS: "Browser-based JavaScript and CORS pre-flight requests" (HTTP docs) ----------------------

PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, dropbox-api-arg"}


@pytest.mark.parametrize("route", [UPLOAD, START, FINISH, FB2, "files/upload_session/finish_batch/check",
                                   "files/download", "check/user"])
def test_cors_preflight_is_allowed(api: Api, route: str) -> None:
    r = api.http.options(f"/2/{route}", headers=PREFLIGHT)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "dropbox-api-arg"} <= allowed
    request_id(r)


def test_cors_preflight_without_requested_headers_lists_the_api_headers(api: Api) -> None:
    r = api.http.options(f"/2/{UPLOAD}", headers={"Origin": "https://app.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert r.status_code == 200
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "dropbox-api-arg", "dropbox-api-path-root",
            "dropbox-api-select-user", "dropbox-api-select-admin"} <= allowed


def test_reject_cors_preflight_refuses_the_preflight(api: Api) -> None:
    r = api.http.options(f"/2/{UPLOAD}", params={"reject_cors_preflight": "true"}, headers=PREFLIGHT)
    bad_input(r, UPLOAD)
    assert "access-control-allow-origin" not in r.headers


def test_simple_cross_site_upload_as_the_docs_describe(api: Api, folder: str) -> None:
    """arg and authorization as URL parameters, the cors-hack content type, reject_cors_preflight=true:
    the answer is readable cross-site."""
    params = {"arg": json.dumps({"path": f"{folder}/simple.txt"}), "authorization": f"Bearer {api.token}",
              "reject_cors_preflight": "true"}
    r = api.http.post(f"/2/{UPLOAD}", params=params, content=b"simple",
                      headers={"Content-Type": "text/plain; charset=dropbox-cors-hack", "Origin": "https://app.example"})
    check_file_metadata(ok_json(r, files.FileMetadata_validator), path=f"{folder}/simple.txt", data=b"simple")
    assert r.headers["access-control-allow-origin"] == "*"


def test_cross_site_download_exposes_the_result_header(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/d.txt", b"dl")
    r = api.download({"path": f"{folder}/d.txt"}, headers={"Origin": "https://app.example"})
    assert r.status_code == 200 and r.content == b"dl"
    assert r.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"dropbox-api-result", "x-dropbox-request-id"} <= exposed


def test_cross_site_errors_are_readable_too(api: Api) -> None:
    r = api.content(START, {"close": "no"}, b"", headers={"Origin": "https://app.example"})
    bad_input(r, START)
    assert r.headers["access-control-allow-origin"] == "*"


def test_no_cors_headers_without_origin(api: Api) -> None:
    r = api.content(START, {}, b"")
    ok_json(r, files.UploadSessionStartResult_validator)
    assert "access-control-allow-origin" not in r.headers


# -- Dropbox-API-Select-User / -Admin on a user token ---------------------------------------------
# Real Dropbox's 400 text, as a client of a user-linked app reported it for files/upload_session/start:
# 'Error in call to API function "files/upload_session/start": Unexpected select user header. Your app
# does not have permission to use this feature'.

@pytest.mark.parametrize(("header", "which"), [("Dropbox-API-Select-User", "user"),
                                               ("Dropbox-API-Select-Admin", "admin")])
def test_select_header_with_a_user_token(api: Api, header: str, which: str) -> None:
    r = api.content(START, {}, b"", headers={header: "dbmid:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    assert bad_input(r, START) == (f'Error in call to API function "{START}": Unexpected select {which} header. '
                                   "Your app does not have permission to use this feature")
    r = api.rpc(FB2, {"entries": []}, headers={header: "dbmid:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    assert bad_input(r, FB2).endswith(f"Unexpected select {which} header. "
                                      "Your app does not have permission to use this feature")


# -- content_hash on a concurrent start: it covers the (empty) content of the call ----------------

def test_concurrent_start_checks_the_empty_content_hash(api: Api) -> None:
    r = api.content(START, {"session_type": "concurrent", "content_hash": content_hash(b"hello")}, b"")
    assert route_error(r, files.UploadSessionStartError_validator, "content_hash_mismatch") == {
        ".tag": "content_hash_mismatch"}
    ok_json(api.content(START, {"session_type": "concurrent", "content_hash": content_hash(b"")}, b""),
            files.UploadSessionStartResult_validator)
    # Data on a concurrent start is refused as such, whatever the hash says.
    r = api.content(START, {"session_type": "concurrent", "content_hash": content_hash(b"x")}, b"x")
    route_error(r, files.UploadSessionStartError_validator, "concurrent_session_data_not_allowed")


# -- "id:abc123xyz/hello.txt": a path relative to a folder's id (HTTP docs, Path formats) -----------

def test_commit_below_a_folder_id(api: Api, folder: str) -> None:
    fid = ok_json(api.rpc("files/create_folder_v2", {"path": f"{folder}/Sub"}))["metadata"]["id"]
    md = api.upload_ok(f"{fid}/a.txt", b"one")
    check_file_metadata(md, path=f"{folder}/Sub/a.txt", data=b"one")
    sid = api.start_ok(b"two", close=True)
    check_file_metadata(api.finish_ok(sid, 3, f"{fid}/deeper/b.txt"), path=f"{folder}/Sub/deeper/b.txt", data=b"two")
    sid = api.start_ok(b"three", close=True)
    res = ok_json(api.rpc(FB2, {"entries": [entry(sid, 5, f"{fid}/c.txt")]}),
                  files.UploadSessionFinishBatchResult_validator)
    assert res["entries"][0]["path_display"] == f"{folder}/Sub/c.txt"
    # and read back the same way
    got = api.metadata_ok(f"{fid}/deeper/b.txt")
    assert got["path_display"] == f"{folder}/Sub/deeper/b.txt"
    assert api.download_bytes(f"{fid}/a.txt") == b"one"
    route_error(api.metadata(f"{fid}/missing.txt"), files.GetMetadataError_validator, "path", "not_found")


def test_commit_below_a_file_id_is_a_file_ancestor_conflict(api: Api, folder: str) -> None:
    fid = api.upload_ok(f"{folder}/f.txt", b"f")["id"]
    r = api.content(UPLOAD, {"path": f"{fid}/x.txt"}, b"x")
    err = route_error(r, files.UploadError_validator, "path", "conflict", "file_ancestor")
    assert err["reason"] == {".tag": "conflict", "conflict": {".tag": "file_ancestor"}}


@pytest.mark.parametrize("tail", ["/", "//x", "/x/"])
def test_malformed_id_relative_paths(api: Api, folder: str, tail: str) -> None:
    fid = ok_json(api.rpc("files/create_folder_v2", {"path": f"{folder}/d"}))["metadata"]["id"]
    r = api.content(UPLOAD, {"path": fid + tail}, b"x")
    route_error(r, files.UploadError_validator, "path", "malformed_path")


def test_folder_id_of_another_account_is_refused(api: Api, account, folder: str) -> None:
    fid = ok_json(api.rpc("files/create_folder_v2", {"path": f"{folder}/mine"}))["metadata"]["id"]
    other = Api(api.http, account.token)
    route_error(other.content(UPLOAD, {"path": f"{fid}/evil.txt"}, b"x"), files.UploadError_validator,
                "path", "malformed_path")
    route_error(other.metadata(f"{fid}/anything"), files.GetMetadataError_validator, "path", "not_found")


# -- client_modified at the ends of the Timestamp range ---------------------------------------------
# Stone accepts any "%Y-%m-%dT%H:%M:%SZ" date.  Year 1 used to come back as "1-01-01T00:00:00Z" (glibc's
# strftime does not pad %Y), which the SDKs' decoders refuse: every answer must keep four digits.

@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "0999-12-31T23:59:59Z", "1969-12-31T23:59:59Z",
                                   "9999-12-31T23:59:59Z"])
def test_client_modified_extremes_round_trip(api: Api, folder: str, stamp: str) -> None:
    path = f"{folder}/cm.txt"
    md = ok_json(api.content(UPLOAD, {"path": path, "client_modified": stamp}, b"x"), files.FileMetadata_validator)
    assert md["client_modified"] == stamp
    sid = api.start_ok(b"y", close=True)
    md = ok_json(api.finish(sid, 1, f"{folder}/cm2.txt", client_modified=stamp), files.FileMetadata_validator)
    assert md["client_modified"] == stamp
    sid = api.start_ok(b"z", close=True)
    res = ok_json(api.rpc(FB2, {"entries": [entry(sid, 1, f"{folder}/cm3.txt", client_modified=stamp)]}),
                  files.UploadSessionFinishBatchResult_validator)
    assert res["entries"][0]["client_modified"] == stamp
    assert api.metadata_ok(path)["client_modified"] == stamp
    r = api.download({"path": path})
    assert json.loads(r.headers["dropbox-api-result"])["client_modified"] == stamp


# -- GET on an RPC or upload route ------------------------------------------------------------------
# Dropbox's text, as a client reported it for users/get_current_account: 'Error in call to API function
# "users/get_current_account": Your request's HTTP request method is "GET".  This function only accepts
# the HTTP request method "POST".'

@pytest.mark.parametrize("route", [START, FINISH, UPLOAD, FB, FB2, "files/upload_session/finish_batch/check",
                                   "users/get_current_account"])
def test_get_on_a_post_only_route(api: Api, route: str) -> None:
    r = api.http.get(f"/2/{route}", headers={**api.auth(), "Dropbox-API-Arg": "{}"})
    assert bad_input(r, route) == (f'Error in call to API function "{route}": Your request\'s HTTP request method '
                                   'is "GET".  This function only accepts the HTTP request method "POST".')
