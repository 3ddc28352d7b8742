"""files/upload on the wire: argument transport, result shape, write modes, route errors, bad input."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from _apiwire import (
    BLOCK,
    Api,
    bad_input,
    check_file_metadata,
    content_hash,
    describe,
    ok_json,
    route_error,
)
from dropbox import files

pytestmark = pytest.mark.api

UPLOAD = "files/upload"


def test_content_hash_helper_matches_documented_vectors() -> None:
    # Guards the helper every other test relies on (vectors from the Dropbox content-hash docs/SDK).
    assert content_hash(b"") == hashlib.sha256(b"").hexdigest()
    assert content_hash(b"hello") == "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
    assert content_hash(bytes(BLOCK)) == "c7e946d101855255d919ef0c70718633adf77d3dfb3adeeecf5d0cb4e951be58"
    assert content_hash(bytes(BLOCK + 1)) == "14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6"


def test_upload_result_shape(api: Api, folder: str) -> None:
    path = f"{folder}/Hello World.txt"
    data = b"hello, wire"
    r = api.content(UPLOAD, {"path": path, "mode": {".tag": "add"}, "autorename": False, "mute": False,
                             "strict_conflict": False, "content_hash": content_hash(data)}, data)
    md = ok_json(r, files.FileMetadata_validator)
    check_file_metadata(md, path=path, data=data)
    assert md["path_lower"] == path.lower()
    # Without client_modified, Dropbox sets it to the server time.
    assert md["client_modified"] <= md["server_modified"]


def test_upload_client_modified_round_trips(api: Api, folder: str) -> None:
    md = api.upload_ok(f"{folder}/c.txt", b"x", client_modified="2024-01-02T03:04:05Z")
    assert md["client_modified"] == "2024-01-02T03:04:05Z"


@pytest.mark.parametrize("ts", ["2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05+00:00", "2024-01-02",
                                "yesterday", 1700000000])
def test_upload_bad_client_modified_is_400(api: Api, folder: str, ts) -> None:
    bad_input(api.content(UPLOAD, {"path": f"{folder}/c.txt", "client_modified": ts}, b"x"), UPLOAD)


def test_upload_minimal_arg_applies_defaults(api: Api, folder: str) -> None:
    # A hand-built CommitInfo omits mode/autorename/mute/strict_conflict: spec defaults apply.
    md = ok_json(api.content(UPLOAD, {"path": f"{folder}/min.txt"}, b"m"), files.FileMetadata_validator)
    check_file_metadata(md, path=f"{folder}/min.txt", data=b"m")


def test_upload_arg_in_url_parameter(api: Api, folder: str) -> None:
    path = f"{folder}/via url ü.txt"
    r = api.content(UPLOAD, {"path": path}, b"url", arg_in="url")
    check_file_metadata(ok_json(r, files.FileMetadata_validator), path=path, data=b"url")


def test_upload_missing_arg_is_400(api: Api) -> None:
    bad_input(api.content(UPLOAD, None, b"x", arg_in="none"), UPLOAD)


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "raw-utf8"])
def test_upload_non_ascii_name(api: Api, folder: str, ascii_only: bool) -> None:
    path = f"{folder}/café ☺ 😀 Ärger.txt"
    r = api.content(UPLOAD, {"path": path}, b"u", ascii_only=ascii_only)
    md = ok_json(r, files.FileMetadata_validator)
    check_file_metadata(md, path=path, data=b"u")
    assert md["name"] == "café ☺ 😀 Ärger.txt"


def test_upload_result_body_is_utf8(api: Api, folder: str) -> None:
    path = f"{folder}/ñ.txt"
    r = api.content(UPLOAD, {"path": path}, b"x")
    # Either raw UTF-8 or \u escapes are valid JSON; the body must decode as UTF-8 in both cases.
    assert json.loads(r.content.decode("utf-8"))["name"] == "ñ.txt"


def test_upload_empty_file(api: Api, folder: str) -> None:
    md = api.upload_ok(f"{folder}/empty", b"")
    assert md["size"] == 0
    assert md["content_hash"] == hashlib.sha256(b"").hexdigest()


def test_upload_multi_block_file(api: Api, folder: str) -> None:
    data = os.urandom(BLOCK + 12345)
    md = api.upload_ok(f"{folder}/big.bin", data, content_hash=content_hash(data))
    assert md["size"] == len(data)
    assert api.download_bytes(f"{folder}/big.bin") == data


def test_upload_chunked_transfer_encoding(api: Api, folder: str) -> None:
    chunks = [b"abc", b"", b"defgh", os.urandom(70000)]
    data = b"".join(chunks)
    r = api.content(UPLOAD, {"path": f"{folder}/chunked.bin"}, iter(chunks))
    assert r.request.headers.get("transfer-encoding") == "chunked"
    check_file_metadata(ok_json(r, files.FileMetadata_validator), path=f"{folder}/chunked.bin", data=data)


def test_upload_chunked_empty_body(api: Api, folder: str) -> None:
    r = api.content(UPLOAD, {"path": f"{folder}/chunked0"}, iter([]))
    check_file_metadata(ok_json(r, files.FileMetadata_validator), path=f"{folder}/chunked0", data=b"")


def test_upload_content_hash_mismatch_is_409(api: Api, folder: str) -> None:
    r = api.content(UPLOAD, {"path": f"{folder}/h.txt", "content_hash": content_hash(b"other")}, b"data")
    assert route_error(r, files.UploadError_validator, "content_hash_mismatch") == {
        ".tag": "content_hash_mismatch"}
    # Nothing was written.
    route_error(api.metadata(f"{folder}/h.txt"), files.GetMetadataError_validator, "path", "not_found")


@pytest.mark.parametrize("bad", ["abc", "0" * 63, "0" * 65, 5, ""])
def test_upload_malformed_content_hash_is_400(api: Api, folder: str, bad) -> None:
    bad_input(api.content(UPLOAD, {"path": f"{folder}/h.txt", "content_hash": bad}, b"data"), UPLOAD)


def test_upload_null_content_hash_is_accepted(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/n.txt", b"n", content_hash=None)


# -- write modes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["add", {".tag": "add"}, "overwrite", {".tag": "overwrite"}])
def test_mode_bare_and_tagged_forms(api: Api, folder: str, mode) -> None:
    api.upload_ok(f"{folder}/m.txt", b"m", mode=mode)


def test_mode_add_conflict(api: Api, folder: str) -> None:
    path = f"{folder}/a.txt"
    api.upload_ok(path, b"one")
    r = api.content(UPLOAD, {"path": path, "mode": "add"}, b"two")
    err = route_error(r, files.UploadError_validator, "path", "conflict", "file")
    assert err[".tag"] == "path"
    assert err["reason"] == {".tag": "conflict", "conflict": {".tag": "file"}}
    assert isinstance(err.get("upload_session_id"), str) and err["upload_session_id"]
    assert api.download_bytes(path) == b"one"


def test_failed_upload_can_be_finished_via_its_session(api: Api, folder: str) -> None:
    # UploadWriteFailed.upload_session_id lets a failed upload be committed with upload_session/finish.
    path = f"{folder}/retry.txt"
    api.upload_ok(path, b"one")
    err = route_error(api.content(UPLOAD, {"path": path, "mode": "add"}, b"second"),
                      files.UploadError_validator, "path")
    sid = err["upload_session_id"]
    md = api.finish_ok(sid, len(b"second"), f"{folder}/retry-2.txt")
    check_file_metadata(md, path=f"{folder}/retry-2.txt", data=b"second")


def test_mode_add_identical_content_is_not_a_conflict(api: Api, folder: str) -> None:
    path = f"{folder}/same.txt"
    first = api.upload_ok(path, b"same")
    second = api.upload_ok(path, b"same", mode="add")
    assert second["rev"] == first["rev"]
    assert second["path_display"] == path


def test_strict_conflict_makes_identical_content_a_conflict(api: Api, folder: str) -> None:
    path = f"{folder}/strict.txt"
    api.upload_ok(path, b"same")
    r = api.content(UPLOAD, {"path": path, "mode": "add", "strict_conflict": True}, b"same")
    route_error(r, files.UploadError_validator, "path", "conflict", "file")


def test_mode_add_autorename(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/doc.txt", b"one")
    md = api.upload_ok(f"{folder}/doc.txt", b"two", mode="add", autorename=True)
    assert md["name"] == "doc (1).txt"
    assert md["path_display"] == f"{folder}/doc (1).txt"
    md2 = api.upload_ok(f"{folder}/doc.txt", b"three", mode="add", autorename=True)
    assert md2["name"] == "doc (2).txt"


def test_mode_overwrite_replaces(api: Api, folder: str) -> None:
    path = f"{folder}/o.txt"
    first = api.upload_ok(path, b"one")
    second = api.upload_ok(path, b"two!", mode={".tag": "overwrite"})
    assert second["rev"] != first["rev"]
    assert second["id"] == first["id"]
    assert api.download_bytes(path) == b"two!"


def test_mode_update_with_current_rev(api: Api, folder: str) -> None:
    path = f"{folder}/u.txt"
    first = api.upload_ok(path, b"one")
    second = api.upload_ok(path, b"two", mode={".tag": "update", "update": first["rev"]})
    assert second["rev"] != first["rev"]
    assert api.download_bytes(path) == b"two"
    # The old rev is now stale: update against it conflicts.
    r = api.content(UPLOAD, {"path": path, "mode": {".tag": "update", "update": first["rev"]}}, b"three")
    route_error(r, files.UploadError_validator, "path", "conflict")
    assert api.download_bytes(path) == b"two"


def test_mode_update_autorename_is_conflicted_copy(api: Api, folder: str) -> None:
    path = f"{folder}/u.txt"
    first = api.upload_ok(path, b"one")
    api.upload_ok(path, b"two", mode="overwrite")
    md = api.upload_ok(path, b"three", mode={".tag": "update", "update": first["rev"]}, autorename=True)
    assert md["name"] != "u.txt"
    assert "conflicted copy" in md["name"], md


@pytest.mark.parametrize("mode", [{".tag": "update", "update": "0123"}, {".tag": "update", "update": "XYZ123456"},
                                  {".tag": "update"}, "update", {".tag": "other"}, "other", {".tag": "bogus"},
                                  "bogus", 1, None, ["add"], {}, {"add": True}])
def test_bad_write_mode_is_400(api: Api, folder: str, mode) -> None:
    bad_input(api.content(UPLOAD, {"path": f"{folder}/x.txt", "mode": mode}, b"x"), UPLOAD)


def test_upload_onto_folder_conflicts(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/dir/inner.txt", b"x")
    r = api.content(UPLOAD, {"path": f"{folder}/dir", "mode": "overwrite"}, b"x")
    route_error(r, files.UploadError_validator, "path", "conflict", "folder")


def test_upload_below_a_file_conflicts(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/file", b"x")
    r = api.content(UPLOAD, {"path": f"{folder}/file/child.txt"}, b"x")
    route_error(r, files.UploadError_validator, "path", "conflict", "file_ancestor")


def test_upload_creates_parent_folders(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/a/b/c/deep.txt", b"x")
    md = api.metadata_ok(f"{folder}/a/b")
    assert md[".tag"] == "folder"
    assert md["path_display"] == f"{folder}/a/b"


def test_upload_case_insensitive_conflict(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/Case.txt", b"one")
    r = api.content(UPLOAD, {"path": f"{folder}/CASE.TXT", "mode": "add"}, b"two")
    route_error(r, files.UploadError_validator, "path", "conflict", "file")


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", [
    {"path": "relative.txt"},
    {"path": ""},
    {"path": 5},
    {"path": None},
    {},
    {"path": "/x.txt", "unknown_field": True},
    {"path": "/x.txt", "autorename": "yes"},
    {"path": "/x.txt", "autorename": None},
    {"path": "/x.txt", "mute": 1},
    {"path": "/x.txt", "strict_conflict": []},
    {"path": "/x.txt", "property_groups": "nope"},
    [],
    "just a string",
    None,
])
def test_upload_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.content(UPLOAD, arg, b"x"), UPLOAD)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"{'path': '/x'}", b'{"path": "/x"', b"\xff\xfe"])
def test_upload_malformed_arg_header_is_400(api: Api, raw: bytes) -> None:
    bad_input(api.content(UPLOAD, raw_arg=raw, data=b"x"), UPLOAD)


def test_upload_bad_arg_message_names_the_header(api: Api) -> None:
    text = bad_input(api.content(UPLOAD, {"path": "relative.txt"}, b"x"), UPLOAD)
    assert "Dropbox-API-Arg" in text, text


@pytest.mark.parametrize("path", ["/", "/a//b.txt", "/trailing/"])
def test_upload_malformed_paths_never_5xx(api: Api, folder: str, path: str) -> None:
    # Dropbox rejects these either as 400 bad input or as 409 path/malformed_path.
    r = api.content(UPLOAD, {"path": path if path == "/" else folder + path}, b"x")
    assert r.status_code in (400, 409), describe(r)
    if r.status_code == 409:
        route_error(r, files.UploadError_validator, "path")
    else:
        bad_input(r, UPLOAD)
