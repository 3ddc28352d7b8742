"""finish_batch (async + /check) and finish_batch_v2 (sync) on the wire."""

from __future__ import annotations

import pytest
from _apiwire import Api, bad_input, check_file_metadata, ok_json, route_error
from dropbox import async_, files

pytestmark = pytest.mark.api

FB = "files/upload_session/finish_batch"
FB2 = "files/upload_session/finish_batch_v2"
CHECK = "files/upload_session/finish_batch/check"


def closed_session(api: Api, data: bytes) -> str:
    return api.start_ok(data, close=True)


def entry(sid: str, offset: int, path: str, **commit) -> dict:
    return {"cursor": {"session_id": sid, "offset": offset}, "commit": {"path": path, **commit}}


# -- finish_batch_v2 ------------------------------------------------------------------------------

def test_finish_batch_v2_success_entries_in_order(api: Api, folder: str) -> None:
    datas = [b"alpha", b"", b"gamma gamma", "ünïcode".encode()]
    names = ["a.txt", "b.txt", "c.txt", "dé.txt"]
    entries = [entry(closed_session(api, d), len(d), f"{folder}/{n}",
                     client_modified="2021-05-06T07:08:09Z") for d, n in zip(datas, names, strict=True)]
    res = ok_json(api.rpc(FB2, {"entries": entries}), files.UploadSessionFinishBatchResult_validator)
    assert set(res) == {"entries"}
    assert len(res["entries"]) == len(datas)
    for got, d, n in zip(res["entries"], datas, names, strict=True):
        assert got[".tag"] == "success", got
        md = {k: v for k, v in got.items() if k != ".tag"}
        check_file_metadata(md, path=f"{folder}/{n}", data=d)
        assert md["client_modified"] == "2021-05-06T07:08:09Z"
    for d, n in zip(datas, names, strict=True):
        assert api.download_bytes(f"{folder}/{n}") == d


def test_finish_batch_v2_empty_entries(api: Api) -> None:
    res = ok_json(api.rpc(FB2, {"entries": []}), files.UploadSessionFinishBatchResult_validator)
    assert res == {"entries": []}


def test_finish_batch_v2_mixed_failures(api: Api, folder: str) -> None:
    good = closed_session(api, b"good")
    open_sid = api.start_ok(b"open")                       # not closed
    off_sid = closed_session(api, b"offset")
    api.upload_ok(f"{folder}/exists.txt", b"old")
    conflict_sid = closed_session(api, b"conflict")
    entries = [
        entry(good, 4, f"{folder}/good.txt"),
        entry(open_sid, 4, f"{folder}/open.txt"),
        entry(off_sid, 1, f"{folder}/off.txt"),
        entry("pid_upload_session:missing", 0, f"{folder}/missing.txt"),
        entry(conflict_sid, 8, f"{folder}/exists.txt", mode="add"),
    ]
    res = ok_json(api.rpc(FB2, {"entries": entries}), files.UploadSessionFinishBatchResult_validator)
    e = res["entries"]
    assert len(e) == 5
    assert e[0][".tag"] == "success" and e[0]["name"] == "good.txt"
    assert e[1] == {".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_closed"}}}
    assert e[2] == {".tag": "failure", "failure": {".tag": "lookup_failed",
                                                   "lookup_failed": {".tag": "incorrect_offset",
                                                                     "correct_offset": 6}}}
    assert e[3] == {".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}}}
    assert e[4] == {".tag": "failure", "failure": {".tag": "path", "path": {".tag": "conflict",
                                                                            "conflict": {".tag": "file"}}}}


def test_finish_batch_v2_session_closed_by_append(api: Api, folder: str) -> None:
    sid = api.start_ok(b"12")
    api.append_ok(sid, 2, b"345", close=True)
    res = ok_json(api.rpc(FB2, {"entries": [entry(sid, 5, f"{folder}/x")]}),
                  files.UploadSessionFinishBatchResult_validator)
    check_file_metadata({k: v for k, v in res["entries"][0].items() if k != ".tag"}, data=b"12345")


def test_finish_batch_v2_same_path_twice_is_entrywise(api: Api, folder: str) -> None:
    # Not specified by Dropbox; entries are independent, in order: the second add sees the first file.
    s1, s2 = closed_session(api, b"one"), closed_session(api, b"two")
    res = ok_json(api.rpc(FB2, {"entries": [entry(s1, 3, f"{folder}/dup"), entry(s2, 3, f"{folder}/dup")]}),
                  files.UploadSessionFinishBatchResult_validator)
    assert res["entries"][0][".tag"] == "success"
    assert res["entries"][1][".tag"] == "failure"
    assert res["entries"][1]["failure"][".tag"] == "path"


def test_finish_batch_v2_1000_entries(api: Api, folder: str) -> None:
    entries = [entry(f"pid_upload_session:none-{i}", 0, f"{folder}/{i}") for i in range(1000)]
    res = ok_json(api.rpc(FB2, {"entries": entries}), files.UploadSessionFinishBatchResult_validator)
    assert len(res["entries"]) == 1000
    assert all(e == {".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}}}
               for e in res["entries"])


@pytest.mark.parametrize("route", [FB, FB2])
def test_finish_batch_more_than_1000_entries_is_400(api: Api, route: str, folder: str) -> None:
    entries = [entry("s", 0, f"{folder}/{i}") for i in range(1001)]
    bad_input(api.rpc(route, {"entries": entries}), route)


@pytest.mark.parametrize("route", [FB, FB2])
@pytest.mark.parametrize("arg", [
    {}, {"entries": None}, {"entries": {}}, {"entries": [{}]}, {"entries": [{"cursor": {"session_id": "s"}}]},
    {"entries": [{"cursor": {"session_id": "s", "offset": True}, "commit": {"path": "/x"}}]},
    {"entries": [{"cursor": {"session_id": "s", "offset": 0}, "commit": {"path": "/x", "mode": "bogus"}}]},
    {"entries": [{"cursor": {"session_id": "s", "offset": 0}, "commit": {"path": "x"}}]},
    {"entries": [{"cursor": {"session_id": "s", "offset": 0}, "commit": {"path": "/x"}, "x": 1}]},
    {"entries": [], "extra": True}, [], None,
])
def test_finish_batch_bad_args_are_400(api: Api, route: str, arg) -> None:
    bad_input(api.rpc(route, arg), route)


# -- finish_batch (v1, async) + check -------------------------------------------------------------

def launch(api: Api, entries: list) -> dict:
    r = api.rpc(FB, {"entries": entries})
    return ok_json(r, files.UploadSessionFinishBatchLaunch_validator)


def complete_entries(api: Api, launch_body: dict) -> list:
    if launch_body[".tag"] == "complete":
        return launch_body["entries"]
    assert launch_body[".tag"] == "async_job_id", launch_body
    assert set(launch_body) == {".tag", "async_job_id"}
    assert isinstance(launch_body["async_job_id"], str) and launch_body["async_job_id"]
    body = api.poll_batch(launch_body["async_job_id"])
    assert set(body) == {".tag", "entries"}
    return body["entries"]


def test_finish_batch_async_round_trip(api: Api, folder: str) -> None:
    datas = [b"one", b"two two", b""]
    entries = [entry(closed_session(api, d), len(d), f"{folder}/f{i}") for i, d in enumerate(datas)]
    got = complete_entries(api, launch(api, entries))
    assert len(got) == 3
    for i, (e, d) in enumerate(zip(got, datas, strict=True)):
        assert e[".tag"] == "success", e
        check_file_metadata({k: v for k, v in e.items() if k != ".tag"}, path=f"{folder}/f{i}", data=d)


def test_finish_batch_async_failures_are_entries(api: Api, folder: str) -> None:
    open_sid = api.start_ok(b"x")
    got = complete_entries(api, launch(api, [entry(open_sid, 1, f"{folder}/a"),
                                             entry("pid_upload_session:none", 0, f"{folder}/b")]))
    assert got[0] == {".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_closed"}}}
    assert got[1] == {".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}}}


def test_finish_batch_check_is_repeatable(api: Api, folder: str) -> None:
    sid = closed_session(api, b"r")
    body = launch(api, [entry(sid, 1, f"{folder}/r")])
    if body[".tag"] != "async_job_id":
        pytest.skip("server completed the batch synchronously")
    first = api.poll_batch(body["async_job_id"])
    again = ok_json(api.rpc(CHECK, {"async_job_id": body["async_job_id"]}),
                    files.UploadSessionFinishBatchJobStatus_validator)
    assert again == first


def test_finish_batch_job_ids_are_per_account(api: Api, account, folder: str) -> None:
    sid = closed_session(api, b"private")
    body = launch(api, [entry(sid, 7, f"{folder}/p")])
    if body[".tag"] != "async_job_id":
        pytest.skip("server completed the batch synchronously")
    api.poll_batch(body["async_job_id"])
    other = Api(api.http, account.token)
    r = other.rpc(CHECK, {"async_job_id": body["async_job_id"]})
    assert route_error(r, async_.PollError_validator, "invalid_async_job_id") == {".tag": "invalid_async_job_id"}


def test_finish_batch_check_unknown_job(api: Api) -> None:
    r = api.rpc(CHECK, {"async_job_id": "34g93hh34h04y384084"})
    err = route_error(r, async_.PollError_validator, "invalid_async_job_id")
    assert err == {".tag": "invalid_async_job_id"}
    assert r.json()["error_summary"].startswith("invalid_async_job_id/")


@pytest.mark.parametrize("arg", [{"async_job_id": ""}, {"async_job_id": 5}, {}, {"async_job_id": "j", "x": 1},
                                 None, "j"])
def test_finish_batch_check_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(CHECK, arg), CHECK)


def test_finish_batch_v1_empty(api: Api) -> None:
    assert complete_entries(api, launch(api, [])) == []
