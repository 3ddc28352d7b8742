"""Robustness on the wire: races, odd paths, odd headers, conditional downloads. Never a 5xx."""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

import httpx
import pytest
from _apiwire import (
    Api,
    bad_input,
    check_file_metadata,
    content_hash,
    describe,
    ok_json,
    ok_void,
    request_id,
    route_error,
)
from dropbox import check, files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.api


def parallel(n: int, fn: Any) -> list[httpx.Response]:
    """Run fn(i) in n threads released together; each thread has its own connection."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as e:
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in out:
        assert isinstance(r, httpx.Response), r
    return out


# -- races ----------------------------------------------------------------------------------------

def test_racing_appends_at_same_offset_exactly_one_wins(server, api: Api, folder: str) -> None:
    sid = api.start_ok(b"0123456789")
    n = 8

    def append(i: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, trust_env=False, verify=False, timeout=60) as c:
            return Api(c, api.token).content("files/upload_session/append_v2",
                                             {"cursor": {"session_id": sid, "offset": 10}}, bytes([65 + i]) * 5)

    rs = parallel(n, append)
    wins = [r for r in rs if r.status_code == 200]
    assert len(wins) == 1, [describe(r) for r in rs]
    ok_void(wins[0])
    for r in rs:
        if r.status_code != 200:
            err = route_error(r, files.UploadSessionAppendError_validator, "incorrect_offset")
            assert err["correct_offset"] == 15
    md = api.finish_ok(sid, 15, f"{folder}/race.bin")
    assert md["size"] == 15


def test_racing_adds_to_same_path(server, api: Api, folder: str) -> None:
    n = 6
    path = f"{folder}/contended.txt"

    def upload(i: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, trust_env=False, verify=False, timeout=60) as c:
            return Api(c, api.token).content("files/upload", {"path": path, "mode": "add"}, f"writer {i}".encode())

    rs = parallel(n, upload)
    assert all(r.status_code in (200, 409) for r in rs), [describe(r) for r in rs]
    wins = [r for r in rs if r.status_code == 200]
    assert len(wins) == 1, [describe(r) for r in rs]
    for r in rs:
        if r.status_code == 409:
            route_error(r, files.UploadError_validator, "path", "conflict", "file")
    stored = api.download_bytes(path)
    assert stored.startswith(b"writer ")
    assert json.loads(wins[0].content)["content_hash"] == content_hash(stored)


def test_racing_autorename_gives_distinct_names(server, api: Api, folder: str) -> None:
    n = 6
    path = f"{folder}/auto.txt"

    def upload(i: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, trust_env=False, verify=False, timeout=60) as c:
            return Api(c, api.token).content("files/upload", {"path": path, "mode": "add", "autorename": True},
                                             f"writer {i}".encode())

    rs = parallel(n, upload)
    names = [ok_json(r, files.FileMetadata_validator)["name"] for r in rs]
    assert len(set(names)) == n, names
    assert set(names) == {"auto.txt", *(f"auto ({k}).txt" for k in range(1, n))}


def test_racing_finish_of_one_session(server, api: Api, folder: str) -> None:
    sid = api.start_ok(b"payload", close=True)
    n = 5

    def finish(i: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, trust_env=False, verify=False, timeout=60) as c:
            return Api(c, api.token).finish(sid, 7, f"{folder}/fin-{i}")

    rs = parallel(n, finish)
    wins = [r for r in rs if r.status_code == 200]
    assert len(wins) == 1, [describe(r) for r in rs]
    for r in rs:
        if r.status_code != 200:
            route_error(r, files.UploadSessionFinishError_validator, "lookup_failed")


# -- odd paths ------------------------------------------------------------------------------------

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FAST
@given(tail=st.text(max_size=60), ascii_only=st.booleans())
def test_arbitrary_paths_never_5xx(api: Api, tail: str, ascii_only: bool) -> None:
    """Any string after a leading slash: accepted, or refused as 400 text / 409 path error."""
    path = f"/odd-{secrets.token_hex(4)}/{tail}"
    r = api.content("files/upload", {"path": path}, b"x", ascii_only=ascii_only)
    assert r.status_code in (200, 400, 409), describe(r)
    if r.status_code == 200:
        md = ok_json(r, files.FileMetadata_validator)
        check_file_metadata(md, data=b"x")
        got = api.metadata_ok(md["path_display"])
        assert got["id"] == md["id"]
    elif r.status_code == 400:
        bad_input(r, "files/upload")
    else:
        route_error(r, files.UploadError_validator, "path")
    g = api.metadata(path)
    assert g.status_code in (200, 400, 409), describe(g)


@pytest.mark.parametrize("name", ["a" * 255, "é" * 255])
def test_long_names(api: Api, folder: str, name: str) -> None:
    md = api.upload_ok(f"{folder}/{name}", b"long")
    assert md["name"] == name


def test_too_long_name_is_refused_cleanly(api: Api, folder: str) -> None:
    r = api.content("files/upload", {"path": f"{folder}/{'a' * 1000}"}, b"x")
    assert r.status_code in (200, 400, 409), describe(r)
    if r.status_code == 409:
        route_error(r, files.UploadError_validator, "path")


@pytest.mark.parametrize("name", [".", "..", "a\x00b", "trailing ", "x\ny"])
def test_questionable_names_never_5xx(api: Api, folder: str, name: str) -> None:
    r = api.content("files/upload", {"path": f"{folder}/{name}"}, b"x")
    assert r.status_code in (200, 400, 409), describe(r)
    request_id(r)


# -- odd headers and methods ----------------------------------------------------------------------

def test_cors_hack_content_type_is_accepted(api: Api) -> None:
    # Dropbox documents "text/plain; charset=dropbox-cors-hack" for browser clients on rpc and upload routes.
    r = api.rpc("check/user", {"query": "cors"}, content_type="text/plain; charset=dropbox-cors-hack")
    assert ok_json(r, check.EchoResult_validator) == {"result": "cors"}
    r = api.content("files/upload_session/start", {}, b"x", content_type="text/plain; charset=dropbox-cors-hack")
    ok_json(r, files.UploadSessionStartResult_validator)


@pytest.mark.parametrize("header", ["Dropbox-API-Select-User", "Dropbox-API-Select-Admin"])
def test_select_headers_with_user_token_are_not_5xx(api: Api, header: str) -> None:
    r = api.rpc("check/user", {"query": "x"}, headers={header: "dbmid:AAAA"})
    # A user token cannot select a member: Dropbox refuses (400 text); ignoring it is also harmless.
    assert r.status_code in (200, 400), describe(r)
    if r.status_code == 400:
        bad_input(r, "check/user")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_client_errors(api: Api, method: str) -> None:
    for route in ("check/user", "files/upload", "files/download"):
        r = api.http.request(method, f"/2/{route}", headers=api.auth(), content=b"{}")
        assert 400 <= r.status_code < 500, describe(r)


def test_root_and_non_api_paths_are_not_5xx(api: Api) -> None:
    for path in ("/", "/2", "/2/", "/3/files/upload", "/favicon.ico"):
        r = api.http.get(path)
        assert r.status_code < 500, describe(r)
    r = api.http.head("/")   # Maestral's connectivity check: any HTTP answer counts
    assert r.status_code < 500


def test_path_root_on_content_routes(api: Api, folder: str) -> None:
    ns = api.current_account()["root_info"]["root_namespace_id"]
    h = {"Dropbox-API-Path-Root": json.dumps({".tag": "namespace_id", "namespace_id": ns})}
    r = api.content("files/upload", {"path": f"{folder}/pr.txt"}, b"pr", headers=h)
    check_file_metadata(ok_json(r, files.FileMetadata_validator), path=f"{folder}/pr.txt", data=b"pr")
    d = api.download({"path": f"{folder}/pr.txt"}, headers=h)
    assert d.status_code == 200 and d.content == b"pr", describe(d)


# -- conditional download -------------------------------------------------------------------------

def test_download_etag_and_if_none_match(api: Api, folder: str) -> None:
    path = f"{folder}/etag.txt"
    api.upload_ok(path, b"v1")
    r = api.download({"path": path})
    etag = r.headers.get("etag")
    if etag is None:
        pytest.skip("no ETag sent")
    again = api.download({"path": path}, headers={"If-None-Match": etag})
    assert again.status_code == 304, describe(again)
    assert again.content == b""
    request_id(again)
    api.upload_ok(path, b"v2", mode="overwrite")
    changed = api.download({"path": path}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.content == b"v2", describe(changed)


# -- cross-account isolation ----------------------------------------------------------------------

def test_ids_revs_and_sessions_do_not_leak_across_accounts(api: Api, account, folder: str) -> None:
    mine = api.upload_ok(f"{folder}/private.txt", b"private bytes")
    sid = api.start_ok(b"mine")
    other = Api(api.http, account.token)
    for path in (mine["id"], f"rev:{mine['rev']}", f"{folder}/private.txt"):
        r = other.download({"path": path})
        route_error(r, files.DownloadError_validator, "path", "not_found")
        assert b"private bytes" not in r.content
    route_error(other.metadata(mine["id"]), files.GetMetadataError_validator, "path", "not_found")
    r = other.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": 4}}, b"x")
    route_error(r, files.UploadSessionAppendError_validator, "not_found")
    route_error(other.finish(sid, 4, "/stolen"), files.UploadSessionFinishError_validator,
                "lookup_failed", "not_found")
    # The owner's session is untouched.
    check_file_metadata(api.finish_ok(sid, 4, f"{folder}/mine"), data=b"mine")
