"""files/download on the wire: Dropbox-API-Result header, GET + URL params, ranges, errors."""

from __future__ import annotations

import json
import os

import pytest
from _apiwire import Api, bad_input, check_file_metadata, describe, request_id, route_error
from dropbox import files
from dropbox import stone_serializers as ss

pytestmark = pytest.mark.api

DOWNLOAD = "files/download"


def result_header(r) -> dict:
    raw = r.headers.get("dropbox-api-result")
    assert raw is not None, describe(r)
    assert raw.isascii(), f"Dropbox-API-Result must be ASCII-escaped JSON: {raw!r}"
    ss.json_decode(files.FileMetadata_validator, raw, strict=True)
    return json.loads(raw)


@pytest.fixture()
def stored(api: Api, folder: str) -> tuple[str, bytes, dict]:
    path = f"{folder}/dl.bin"
    data = os.urandom(1000) + b"END"
    return path, data, api.upload_ok(path, data, client_modified="2019-09-09T09:09:09Z")


def test_download_post(api: Api, stored) -> None:
    path, data, up = stored
    r = api.download({"path": path})
    assert r.status_code == 200, describe(r)
    request_id(r)
    assert r.headers["content-type"].startswith("application/octet-stream"), describe(r)
    assert r.content == data
    assert int(r.headers["content-length"]) == len(data)
    md = result_header(r)
    check_file_metadata(md, path=path, data=data)
    assert md["rev"] == up["rev"] and md["id"] == up["id"]
    assert md["client_modified"] == "2019-09-09T09:09:09Z"


def test_download_sends_no_json_content_type(api: Api, stored) -> None:
    path, _, _ = stored
    r = api.download({"path": path})
    assert r.headers["content-type"] != "application/json"


def test_download_get_with_url_params(api: Api, stored) -> None:
    path, data, _ = stored
    r = api.download({"path": path}, method="GET", url_params=True)
    assert r.status_code == 200, describe(r)
    assert r.content == data
    check_file_metadata(result_header(r), path=path, data=data)


def test_download_post_with_url_params(api: Api, stored) -> None:
    path, data, _ = stored
    r = api.download({"path": path}, url_params=True)
    assert r.status_code == 200, describe(r)
    assert r.content == data


def test_download_get_with_header_arg(api: Api, stored) -> None:
    path, data, _ = stored
    r = api.download({"path": path}, method="GET")
    assert r.status_code == 200, describe(r)
    assert r.content == data


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "raw-utf8"])
def test_download_non_ascii_name_result_is_ascii_escaped(api: Api, folder: str, ascii_only: bool) -> None:
    path = f"{folder}/héllo 😀 wörld.txt"
    api.upload_ok(path, b"hi")
    r = api.download({"path": path}, ascii_only=ascii_only)
    assert r.status_code == 200, describe(r)
    md = result_header(r)
    assert md["name"] == "héllo 😀 wörld.txt"
    assert md["path_display"] == path
    assert "\\u00e9" in r.headers["dropbox-api-result"]


def test_download_by_id(api: Api, stored) -> None:
    path, data, up = stored
    r = api.download({"path": up["id"]})
    assert r.status_code == 200, describe(r)
    assert r.content == data
    check_file_metadata(result_header(r), path=path, data=data)


def test_download_by_rev_path(api: Api, stored) -> None:
    # DownloadArg.path is a ReadPath: "rev:<rev>" names a revision directly.
    _, data, up = stored
    r = api.download({"path": f"rev:{up['rev']}"})
    assert r.status_code == 200, describe(r)
    assert r.content == data


def test_download_old_rev(api: Api, folder: str) -> None:
    path = f"{folder}/revs.txt"
    first = api.upload_ok(path, b"version one")
    api.upload_ok(path, b"version two", mode="overwrite")
    r = api.download({"path": path, "rev": first["rev"]})
    assert r.status_code == 200, describe(r)
    assert r.content == b"version one"
    assert result_header(r)["rev"] == first["rev"]


def test_download_case_insensitive(api: Api, stored) -> None:
    path, data, _ = stored
    r = api.download({"path": path.upper()})
    assert r.status_code == 200, describe(r)
    assert r.content == data
    assert result_header(r)["path_lower"] == path.lower()


def test_download_empty_file(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/empty", b"")
    r = api.download({"path": f"{folder}/empty"})
    assert r.status_code == 200, describe(r)
    assert r.content == b""
    assert r.headers["content-length"] == "0"
    check_file_metadata(result_header(r), data=b"")


def test_download_not_found(api: Api, folder: str) -> None:
    r = api.download({"path": f"{folder}/missing"})
    err = route_error(r, files.DownloadError_validator, "path", "not_found")
    assert err == {".tag": "path", "path": {".tag": "not_found"}}
    assert r.json()["error_summary"].startswith("path/not_found/")
    assert "dropbox-api-result" not in r.headers


def test_download_folder_is_not_file(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/sub/x", b"x")
    r = api.download({"path": f"{folder}/sub"})
    assert route_error(r, files.DownloadError_validator, "path", "not_file") == {
        ".tag": "path", "path": {".tag": "not_file"}}


def test_download_unknown_id_and_rev(api: Api) -> None:
    route_error(api.download({"path": "id:doesnotexist"}), files.DownloadError_validator, "path", "not_found")
    r = api.download({"path": "rev:0123456789abcdef"})
    route_error(r, files.DownloadError_validator, "path")


@pytest.mark.parametrize("arg", [{"path": "relative"}, {"path": 1}, {}, {"path": "/x", "extra": 1},
                                 {"path": "/x", "rev": "short"}, [], None])
def test_download_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.download(arg), DOWNLOAD)


def test_download_missing_arg_is_400(api: Api) -> None:
    r = api.http.post("/2/files/download", headers=api.auth())
    bad_input(r, DOWNLOAD)


def test_download_malformed_arg_is_400(api: Api) -> None:
    r = api.http.post("/2/files/download", headers={**api.auth(), "Dropbox-API-Arg": "{nope"})
    bad_input(r, DOWNLOAD)


# -- ranges ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rng,start,end", [
    ("bytes=0-9", 0, 9),
    ("bytes=10-19", 10, 19),
    ("bytes=1000-", 1000, 1002),
    ("bytes=-3", 1000, 1002),
    ("bytes=1000-999999", 1000, 1002),     # end past EOF is clamped
    ("bytes=1002-1002", 1002, 1002),
])
def test_download_range(api: Api, stored, rng: str, start: int, end: int) -> None:
    path, data, _ = stored
    r = api.download({"path": path}, headers={"Range": rng})
    assert r.status_code == 206, describe(r)
    assert r.content == data[start:end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert int(r.headers["content-length"]) == end - start + 1
    check_file_metadata(result_header(r), data=data)


def test_download_range_with_get_url_params(api: Api, stored) -> None:
    path, data, _ = stored
    r = api.download({"path": path}, method="GET", url_params=True, headers={"Range": "bytes=5-7"})
    assert r.status_code == 206, describe(r)
    assert r.content == data[5:8]


@pytest.mark.parametrize("rng", ["bytes=1003-", "bytes=5000-6000"])
def test_download_unsatisfiable_range_is_416(api: Api, stored, rng: str) -> None:
    path, data, _ = stored
    r = api.download({"path": path}, headers={"Range": rng})
    assert r.status_code == 416, describe(r)
    request_id(r)
    assert r.headers.get("content-range") == f"bytes */{len(data)}", describe(r)


@pytest.mark.parametrize("rng", ["bytes=9-3", "items=0-5", "bytes=abc", "bytes=0-1,4-5"])
def test_download_odd_ranges_never_5xx(api: Api, stored, rng: str) -> None:
    path, data, _ = stored
    r = api.download({"path": path}, headers={"Range": rng})
    # RFC 9110: an invalid or unsupported Range may be ignored (200 full body); a satisfiable
    # multi-range may be served; an unsatisfiable one is 416. Never 5xx.
    assert r.status_code in (200, 206, 400, 416), describe(r)
    if r.status_code == 200:
        assert r.content == data


def test_download_range_on_empty_file(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/e", b"")
    r = api.download({"path": f"{folder}/e"}, headers={"Range": "bytes=0-"})
    assert r.status_code in (200, 416), describe(r)
    if r.status_code == 200:
        assert r.content == b""
