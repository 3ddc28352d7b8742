"""Upload sessions on the wire: start, append(_v2), append_batch, finish, start_batch, concurrent sessions."""

from __future__ import annotations

import os

import pytest
from _apiwire import (
    BLOCK,
    Api,
    bad_input,
    check_file_metadata,
    content_hash,
    ok_json,
    ok_void,
    route_error,
)
from dropbox import files

pytestmark = pytest.mark.api

START = "files/upload_session/start"
APPEND = "files/upload_session/append"
APPEND_V2 = "files/upload_session/append_v2"
APPEND_BATCH = "files/upload_session/append_batch"
FINISH = "files/upload_session/finish"
START_BATCH = "files/upload_session/start_batch"


def cursor(sid: str, offset: int) -> dict:
    return {"session_id": sid, "offset": offset}


# -- start ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", [
    {},
    {"close": False},
    {"close": True},
    {"session_type": {".tag": "sequential"}},
    {"session_type": "sequential"},
    {"session_type": None},
    {"content_hash": None},
    {"close": False, "session_type": {".tag": "sequential"}, "content_hash": content_hash(b"hello")},
    None,   # stone: null is the default value of a struct whose fields all have defaults
])
def test_start_arg_forms(api: Api, arg: dict | None) -> None:
    r = api.content(START, arg, b"hello")
    body = ok_json(r, files.UploadSessionStartResult_validator)
    assert set(body) == {"session_id"}


def test_start_session_ids_are_unique(api: Api) -> None:
    ids = {api.start_ok() for _ in range(5)}
    assert len(ids) == 5


def test_start_content_hash_mismatch(api: Api) -> None:
    r = api.content(START, {"content_hash": content_hash(b"nope")}, b"hello")
    assert route_error(r, files.UploadSessionStartError_validator, "content_hash_mismatch") == {
        ".tag": "content_hash_mismatch"}


@pytest.mark.parametrize("arg", [
    {"close": "false"}, {"close": 0}, {"close": None}, {"session_type": {".tag": "other"}},
    {"session_type": "other"}, {"session_type": 1}, {"content_hash": "xyz"}, {"unknown": 1}, [], 7, "",
    {"cursor": {"session_id": "s", "offset": 0}},
])
def test_start_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.content(START, arg, b"x"), START)


def test_start_unknown_session_type_is_400(api: Api) -> None:
    # Open union, but an unknown tag cannot be acted on; a strict decoder rejects it.
    bad_input(api.content(START, {"session_type": {".tag": "parallel"}}, b""), START)


# -- append_v2 / append ---------------------------------------------------------------------------

def test_sequential_session_round_trip(api: Api, folder: str) -> None:
    parts = [b"first-", b"", b"second-", os.urandom(1000)]
    sid = api.start_ok(parts[0])
    off = len(parts[0])
    for p in parts[1:]:
        api.append_ok(sid, off, p)
        off += len(p)
    tail = b"-tail"
    md = api.finish_ok(sid, off, f"{folder}/seq.bin", tail)
    data = b"".join(parts) + tail
    check_file_metadata(md, path=f"{folder}/seq.bin", data=data)
    assert api.download_bytes(f"{folder}/seq.bin") == data


def test_append_v1_takes_a_bare_cursor(api: Api, folder: str) -> None:
    sid = api.start_ok(b"abc")
    ok_void(api.content(APPEND, cursor(sid, 3), b"def"))
    md = api.finish_ok(sid, 6, f"{folder}/v1.txt")
    check_file_metadata(md, data=b"abcdef")


def test_append_v1_incorrect_offset(api: Api) -> None:
    sid = api.start_ok(b"abc")
    err = route_error(api.content(APPEND, cursor(sid, 1), b"x"), files.UploadSessionAppendError_validator,
                      "incorrect_offset")
    assert err == {".tag": "incorrect_offset", "correct_offset": 3}


def test_append_with_content_hash(api: Api) -> None:
    sid = api.start_ok(b"abc")
    api.append_ok(sid, 3, b"defg", content_hash=content_hash(b"defg"))
    r = api.content(APPEND_V2, {"cursor": cursor(sid, 7), "content_hash": content_hash(b"wrong")}, b"hij")
    assert route_error(r, files.UploadSessionAppendError_validator, "content_hash_mismatch") == {
        ".tag": "content_hash_mismatch"}
    # The rejected bytes were not appended.
    api.append_ok(sid, 7, b"hij")


def test_append_incorrect_offset(api: Api) -> None:
    sid = api.start_ok(b"hello")
    for wrong in (0, 4, 6, 1000):
        r = api.content(APPEND_V2, {"cursor": cursor(sid, wrong)}, b"x")
        err = route_error(r, files.UploadSessionAppendError_validator, "incorrect_offset")
        assert err == {".tag": "incorrect_offset", "correct_offset": 5}
        assert r.json()["error_summary"].startswith("incorrect_offset/")


def test_append_unknown_session(api: Api) -> None:
    r = api.content(APPEND_V2, {"cursor": cursor("pid_upload_session:nope", 0)}, b"x")
    assert route_error(r, files.UploadSessionAppendError_validator, "not_found") == {".tag": "not_found"}


def test_append_after_close(api: Api) -> None:
    sid = api.start_ok(b"abc")
    api.append_ok(sid, 3, b"d", close=True)
    r = api.content(APPEND_V2, {"cursor": cursor(sid, 4)}, b"e")
    assert route_error(r, files.UploadSessionAppendError_validator, "closed") == {".tag": "closed"}


def test_start_with_close_then_append_is_closed(api: Api) -> None:
    sid = api.start_ok(b"abc", close=True)
    r = api.content(APPEND_V2, {"cursor": cursor(sid, 3)}, b"")
    route_error(r, files.UploadSessionAppendError_validator, "closed")


def test_zero_byte_appends_at_current_offset(api: Api, folder: str) -> None:
    # rclone: a 0-byte append_v2 (close=false), then another (close=true), both chunked.
    sid = api.start_ok(b"")
    ok_void(api.content(APPEND_V2, {"cursor": cursor(sid, 0), "close": False}, iter([b"twelve bytes"])))
    ok_void(api.content(APPEND_V2, {"cursor": cursor(sid, 12), "close": False}, iter([])))
    ok_void(api.content(APPEND_V2, {"cursor": cursor(sid, 12), "close": True}, iter([])))
    md = api.finish_ok(sid, 12, f"{folder}/z.txt")
    check_file_metadata(md, data=b"twelve bytes")


def test_append_chunked_body(api: Api, folder: str) -> None:
    sid = api.start_ok(b"")
    chunks = [os.urandom(100_000), b"", os.urandom(33)]
    r = api.content(APPEND_V2, {"cursor": cursor(sid, 0)}, iter(chunks))
    assert r.request.headers.get("transfer-encoding") == "chunked"
    ok_void(r)
    md = api.finish_ok(sid, 100_033, f"{folder}/c.bin")
    check_file_metadata(md, data=b"".join(chunks))


def test_append_arg_in_url(api: Api) -> None:
    sid = api.start_ok(b"ab")
    ok_void(api.content(APPEND_V2, {"cursor": cursor(sid, 2)}, b"cd", arg_in="url"))


@pytest.mark.parametrize("offset", [True, False, "5", 5.0, 5.5, -1, None, [5], {"n": 5}, 2**64])
def test_append_bad_offset_types_are_400(api: Api, offset) -> None:
    sid = api.start_ok(b"hello")
    bad_input(api.content(APPEND_V2, {"cursor": {"session_id": sid, "offset": offset}}, b"x"), APPEND_V2)
    # The session is untouched.
    api.append_ok(sid, 5, b"!")


@pytest.mark.parametrize("arg", [
    {}, {"cursor": {"offset": 0}}, {"cursor": {"session_id": "s"}}, {"cursor": {"session_id": 5, "offset": 0}},
    {"cursor": {"session_id": "s", "offset": 0}, "close": "yes"},
    {"cursor": {"session_id": "s", "offset": 0}, "bogus": 1},
    {"cursor": {"session_id": "s", "offset": 0, "bogus": 1}},
    {"cursor": "s"}, {"session_id": "s", "offset": 0},   # v1 shape sent to v2
])
def test_append_v2_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.content(APPEND_V2, arg, b"x"), APPEND_V2)


def test_append_v1_rejects_v2_shape(api: Api) -> None:
    bad_input(api.content(APPEND, {"cursor": cursor("s", 0), "close": False}, b"x"), APPEND)


# -- finish ---------------------------------------------------------------------------------------

def test_finish_result_shape_and_metadata(api: Api, folder: str) -> None:
    sid = api.start_ok(b"abc")
    path = f"{folder}/Fin Ish.TXT"
    r = api.finish(sid, 3, path, b"", mode={".tag": "add"}, autorename=False, mute=False, strict_conflict=False,
                   client_modified="2020-02-29T12:00:00Z")
    md = ok_json(r, files.FileMetadata_validator)
    check_file_metadata(md, path=path, data=b"abc")
    assert md["client_modified"] == "2020-02-29T12:00:00Z"
    got = api.metadata_ok(path)
    assert {k: got[k] for k in ("id", "rev", "size", "content_hash", "path_display")} == {
        k: md[k] for k in ("id", "rev", "size", "content_hash", "path_display")}


def test_finish_with_empty_body_content_hash(api: Api, folder: str) -> None:
    # SDK 12.2.x sends the hash of the (empty) finish body.
    sid = api.start_ok(b"data")
    r = api.content(FINISH, {"cursor": cursor(sid, 4), "commit": {"path": f"{folder}/e.txt"},
                             "content_hash": content_hash(b"")}, b"")
    check_file_metadata(ok_json(r, files.FileMetadata_validator), data=b"data")


def test_finish_content_hash_mismatch(api: Api, folder: str) -> None:
    sid = api.start_ok(b"data")
    r = api.content(FINISH, {"cursor": cursor(sid, 4), "commit": {"path": f"{folder}/e.txt"},
                             "content_hash": content_hash(b"x")}, b"more")
    route_error(r, files.UploadSessionFinishError_validator, "content_hash_mismatch")


def test_finish_unknown_session(api: Api, folder: str) -> None:
    r = api.finish("pid_upload_session:unknown", 0, f"{folder}/x")
    err = route_error(r, files.UploadSessionFinishError_validator, "lookup_failed", "not_found")
    assert err == {".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}}
    assert r.json()["error_summary"].startswith("lookup_failed/not_found/")


def test_finish_incorrect_offset(api: Api, folder: str) -> None:
    sid = api.start_ok(b"abcd")
    err = route_error(api.finish(sid, 2, f"{folder}/x"), files.UploadSessionFinishError_validator,
                      "lookup_failed", "incorrect_offset")
    assert err == {".tag": "lookup_failed", "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 4}}


def test_finish_twice_second_is_lookup_failure(api: Api, folder: str) -> None:
    sid = api.start_ok(b"abcd")
    api.finish_ok(sid, 4, f"{folder}/once")
    err = route_error(api.finish(sid, 4, f"{folder}/twice"), files.UploadSessionFinishError_validator,
                      "lookup_failed")
    assert err["lookup_failed"][".tag"] in ("not_found", "closed"), err


def test_finish_path_conflict_then_retry(api: Api, folder: str) -> None:
    path = f"{folder}/conflict.txt"
    api.upload_ok(path, b"existing")
    sid = api.start_ok(b"new ")
    r = api.finish(sid, 4, path, b"data", mode="add")
    err = route_error(r, files.UploadSessionFinishError_validator, "path", "conflict", "file")
    assert err == {".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}}
    # The finish body was appended before the path failed: retry with an empty body at the new offset.
    md = api.finish_ok(sid, 8, path, b"", mode="overwrite")
    check_file_metadata(md, path=path, data=b"new data")


def test_finish_closed_session(api: Api, folder: str) -> None:
    sid = api.start_ok(b"ab", close=True)
    check_file_metadata(api.finish_ok(sid, 2, f"{folder}/closed"), data=b"ab")


def test_finish_closed_session_with_data_is_error(api: Api, folder: str) -> None:
    sid = api.start_ok(b"ab", close=True)
    err = route_error(api.finish(sid, 2, f"{folder}/closed", b"more"), files.UploadSessionFinishError_validator,
                      "lookup_failed", "closed")
    assert err == {".tag": "lookup_failed", "lookup_failed": {".tag": "closed"}}


@pytest.mark.parametrize("arg", [
    {"cursor": {"session_id": "s", "offset": 0}},
    {"commit": {"path": "/x"}},
    {"cursor": {"session_id": "s", "offset": 0}, "commit": {"path": "x"}},
    {"cursor": {"session_id": "s", "offset": 0}, "commit": {"path": "/x", "mode": "append"}},
    {"cursor": {"session_id": "s", "offset": 0}, "commit": {"path": "/x"}, "extra": 1},
    {"cursor": {"session_id": "s", "offset": True}, "commit": {"path": "/x"}},
    {"cursor": {"session_id": "s", "offset": "0"}, "commit": {"path": "/x"}},
    {"cursor": {"session_id": "s", "offset": 0}, "commit": "/x"},
    {"cursor": {"session_id": "s", "offset": 0}, "commit": {"path": "/x"}, "content_hash": ""},
])
def test_finish_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.content(FINISH, arg, b""), FINISH)


# -- start_batch ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 1000])
def test_start_batch(api: Api, n: int) -> None:
    r = api.rpc(START_BATCH, {"num_sessions": n})
    body = ok_json(r, files.UploadSessionStartBatchResult_validator)
    assert set(body) == {"session_ids"}
    assert len(body["session_ids"]) == n == len(set(body["session_ids"]))


def test_start_batch_sessions_are_usable(api: Api, folder: str) -> None:
    ids = ok_json(api.rpc(START_BATCH, {"num_sessions": 2, "session_type": "sequential"}))["session_ids"]
    api.append_ok(ids[0], 0, b"zero", close=True)
    check_file_metadata(api.finish_ok(ids[0], 4, f"{folder}/sb0"), data=b"zero")
    check_file_metadata(api.finish_ok(ids[1], 0, f"{folder}/sb1"), data=b"")


@pytest.mark.parametrize("arg", [
    {"num_sessions": 0}, {"num_sessions": 1001}, {"num_sessions": -1}, {"num_sessions": "3"},
    {"num_sessions": True}, {"num_sessions": 2.0}, {"num_sessions": None}, {}, {"num_sessions": 1, "x": 1},
    {"num_sessions": 1, "session_type": "bogus"}, [], None,
])
def test_start_batch_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(START_BATCH, arg), START_BATCH)


# -- append_batch ---------------------------------------------------------------------------------

def test_append_batch_success(api: Api, folder: str) -> None:
    ids = ok_json(api.rpc(START_BATCH, {"num_sessions": 2}))["session_ids"]
    body = b"abc" + b"defgh"
    arg = {"entries": [{"cursor": cursor(ids[0], 0), "length": 3, "close": True},
                       {"cursor": cursor(ids[1], 0), "length": 5}],
           "content_hash": content_hash(body)}
    res = ok_json(api.content(APPEND_BATCH, arg, body), files.UploadSessionAppendBatchResult_validator)
    assert res == {"entries": [{".tag": "success"}, {".tag": "success"}]}
    check_file_metadata(api.finish_ok(ids[0], 3, f"{folder}/ab0"), data=b"abc")
    api.append_ok(ids[1], 5, b"!")
    check_file_metadata(api.finish_ok(ids[1], 6, f"{folder}/ab1"), data=b"defgh!")


def test_append_batch_per_entry_failure(api: Api) -> None:
    sid_ok = api.start_ok(b"")
    sid_off = api.start_ok(b"12")
    arg = {"entries": [{"cursor": cursor(sid_ok, 0), "length": 2},
                       {"cursor": cursor(sid_off, 0), "length": 2},
                       {"cursor": cursor("pid_upload_session:missing", 0), "length": 1}]}
    res = ok_json(api.content(APPEND_BATCH, arg, b"aabbc"), files.UploadSessionAppendBatchResult_validator)
    assert res["entries"][0] == {".tag": "success"}
    assert res["entries"][1] == {".tag": "failure",
                                 "failure": {".tag": "incorrect_offset", "correct_offset": 2}}
    assert res["entries"][2] == {".tag": "failure", "failure": {".tag": "not_found"}}


def test_append_batch_length_mismatch(api: Api) -> None:
    sid = api.start_ok(b"")
    r = api.content(APPEND_BATCH, {"entries": [{"cursor": cursor(sid, 0), "length": 10}]}, b"short")
    route_error(r, files.UploadSessionAppendBatchError_validator, "length_mismatch")


def test_append_batch_content_hash_mismatch(api: Api) -> None:
    sid = api.start_ok(b"")
    r = api.content(APPEND_BATCH, {"entries": [{"cursor": cursor(sid, 0), "length": 3}],
                                   "content_hash": content_hash(b"xyz")}, b"abc")
    route_error(r, files.UploadSessionAppendBatchError_validator, "content_hash_mismatch")


@pytest.mark.parametrize("arg", [
    {}, {"entries": "x"}, {"entries": [{"cursor": {"session_id": "s", "offset": 0}}]},
    {"entries": [{"cursor": {"session_id": "s", "offset": 0}, "length": -1}]},
    {"entries": [{"cursor": {"session_id": "s", "offset": 0}, "length": True}]},
    {"entries": [{"cursor": {"session_id": "s", "offset": 0}, "length": 1, "x": 1}]},
])
def test_append_batch_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.content(APPEND_BATCH, arg, b"x"), APPEND_BATCH)


def test_append_batch_too_many_entries_is_400(api: Api) -> None:
    entries = [{"cursor": cursor("s", 0), "length": 0}] * 1001
    bad_input(api.content(APPEND_BATCH, {"entries": entries}, b""), APPEND_BATCH)


# -- concurrent sessions --------------------------------------------------------------------------

CONC = {"session_type": {".tag": "concurrent"}}


def test_concurrent_start_with_data_not_allowed(api: Api) -> None:
    r = api.content(START, CONC, b"data")
    route_error(r, files.UploadSessionStartError_validator, "concurrent_session_data_not_allowed")


def test_concurrent_start_with_close_not_allowed(api: Api) -> None:
    r = api.content(START, {**CONC, "close": True}, b"")
    route_error(r, files.UploadSessionStartError_validator, "concurrent_session_close_not_allowed")


def test_concurrent_session_out_of_order(api: Api, folder: str) -> None:
    a, b, tail = os.urandom(BLOCK), os.urandom(BLOCK), b"tail"
    sid = api.start_ok(b"", session_type="concurrent")
    api.append_ok(sid, BLOCK, b)
    api.append_ok(sid, 0, a)
    api.append_ok(sid, 2 * BLOCK, tail, close=True)
    md = api.finish_ok(sid, 2 * BLOCK + len(tail), f"{folder}/conc.bin")
    check_file_metadata(md, path=f"{folder}/conc.bin", data=a + b + tail)


def test_concurrent_invalid_offset_and_size(api: Api) -> None:
    sid = api.start_ok(b"", **CONC)
    r = api.content(APPEND_V2, {"cursor": cursor(sid, 100)}, bytes(BLOCK))
    route_error(r, files.UploadSessionAppendError_validator, "concurrent_session_invalid_offset")
    r = api.content(APPEND_V2, {"cursor": cursor(sid, 0)}, b"not a multiple of 4 MiB")
    route_error(r, files.UploadSessionAppendError_validator, "concurrent_session_invalid_data_size")


def test_concurrent_finish_not_closed_and_data_not_allowed(api: Api, folder: str) -> None:
    sid = api.start_ok(b"", **CONC)
    route_error(api.finish(sid, 0, f"{folder}/c"), files.UploadSessionFinishError_validator,
                "concurrent_session_not_closed")
    api.append_ok(sid, 0, b"small", close=True)
    route_error(api.finish(sid, 5, f"{folder}/c", b"data"), files.UploadSessionFinishError_validator,
                "concurrent_session_data_not_allowed")
    check_file_metadata(api.finish_ok(sid, 5, f"{folder}/c"), data=b"small")


def test_concurrent_finish_missing_data(api: Api, folder: str) -> None:
    sid = api.start_ok(b"", **CONC)
    api.append_ok(sid, BLOCK, bytes(BLOCK))
    api.append_ok(sid, 2 * BLOCK, b"end", close=True)
    route_error(api.finish(sid, 2 * BLOCK + 3, f"{folder}/c"), files.UploadSessionFinishError_validator,
                "concurrent_session_missing_data")
