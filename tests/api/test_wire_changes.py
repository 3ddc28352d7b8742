"""files/list_folder/get_latest_cursor and files/list_folder/longpoll on the wire.

Longpoll is a noauth route (the SDK sends it to the notify host without a token): these tests call
it without an Authorization header.  The one test that must wait out a 30 s timeout runs all its
"no change" cases at once, so the module pays the 30 s once.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from _apiwire import Api, bad_input, describe, ok_json, request_id, route_error
from dropbox import files
from harness import running_server

pytestmark = pytest.mark.api

LATEST = "files/list_folder/get_latest_cursor"
LONGPOLL = "files/list_folder/longpoll"
CONTINUE = "files/list_folder/continue"


def latest(api: Api, path: str, **arg: Any) -> str:
    body = ok_json(api.rpc(LATEST, {"path": path, **arg}), files.ListFolderGetLatestCursorResult_validator)
    assert set(body) == {"cursor"} and isinstance(body["cursor"], str) and body["cursor"]
    return body["cursor"]  # type: ignore[no-any-return]


def longpoll(http: httpx.Client, cursor: str, timeout: Any = 30) -> httpx.Response:
    return http.post(f"/2/{LONGPOLL}", content=json.dumps({"cursor": cursor, "timeout": timeout}),
                     headers={"Content-Type": "application/json"}, timeout=120)


def changes(resp: httpx.Response) -> bool:
    body = ok_json(resp, files.ListFolderLongpollResult_validator)
    assert set(body) == {"changes"}, body  # localbox never asks for a backoff
    return body["changes"]  # type: ignore[no-any-return]


def continue_names(api: Api, cursor: str) -> list[tuple[str, str]]:
    body = ok_json(api.rpc(CONTINUE, {"cursor": cursor}), files.ListFolderResult_validator)
    return [(e[".tag"], e["path_display"]) for e in body["entries"]]


def in_background(fn: Callable[[], Any]) -> Any:
    pool = ThreadPoolExecutor(1)
    fut = pool.submit(fn)
    pool.shutdown(wait=False)
    return fut


# -- get_latest_cursor ----------------------------------------------------------------------------

def test_latest_cursor_lists_nothing_now_and_only_later_changes(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/old.txt", b"old")
    cursor = latest(api, folder)
    assert ok_json(api.rpc(CONTINUE, {"cursor": cursor})) == {"entries": [], "cursor": cursor, "has_more": False}
    api.upload_ok(f"{folder}/New.txt", b"new")
    api.upload_ok(f"{folder}-elsewhere/x", b"x")
    assert continue_names(api, cursor) == [("file", f"{folder}/New.txt")]


def test_latest_cursor_recursive_and_root(http, account) -> None:
    api = Api(http, account.token)
    api.upload_ok("/a/b/old", b"1")
    flat, deep, root = latest(api, "/a"), latest(api, "/a", recursive=True), latest(api, "", recursive=True)
    api.upload_ok("/a/b/new", b"2")
    assert continue_names(api, flat) == []
    assert continue_names(api, deep) == [("file", "/a/b/new")]
    assert continue_names(api, root) == [("file", "/a/b/new")]


def test_latest_cursor_by_id(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/d/x", b"x")
    cursor = latest(api, api.metadata_ok(f"{folder}/d")["id"])
    api.upload_ok(f"{folder}/d/y", b"y")
    assert continue_names(api, cursor) == [("file", f"{folder}/d/y")]


def test_latest_cursor_not_found(api: Api, folder: str) -> None:
    r = api.rpc(LATEST, {"path": f"{folder}/nope"})
    assert route_error(r, files.ListFolderError_validator, "path", "not_found") == {
        ".tag": "path", "path": {".tag": "not_found"}}


def test_latest_cursor_on_file_is_not_folder(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/file", b"x")
    r = api.rpc(LATEST, {"path": f"{folder}/file"})
    assert route_error(r, files.ListFolderError_validator, "path", "not_folder") == {
        ".tag": "path", "path": {".tag": "not_folder"}}


@pytest.mark.parametrize("arg", [{}, {"path": "x"}, {"path": "/"}, {"path": "", "limit": 0},
                                 {"path": "", "limit": 2001}, {"path": "", "recursive": "yes"},
                                 {"path": "", "bogus": True}, None])
def test_latest_cursor_bad_args_are_400(api: Api, arg) -> None:
    bad_input(api.rpc(LATEST, arg), LATEST)


def test_latest_cursor_needs_a_token(api: Api) -> None:
    r = api.rpc(LATEST, {"path": ""}, auth=False)
    assert r.status_code == 400, describe(r)


# -- longpoll: arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("timeout", [29, 481, 0, -1, True, "30", 30.5])
def test_longpoll_timeout_out_of_range_is_400(http, api: Api, timeout: Any) -> None:
    cursor = latest(api, "")
    bad_input(longpoll(http, cursor, timeout), LONGPOLL)


@pytest.mark.parametrize("arg", [{}, {"cursor": ""}, {"cursor": 5}, {"timeout": 30}, None,
                                 {"cursor": "AAHx", "timeout": 30, "bogus": 1}])
def test_longpoll_bad_args_are_400(http, arg: Any) -> None:
    r = http.post(f"/2/{LONGPOLL}", content=json.dumps(arg), headers={"Content-Type": "application/json"})
    bad_input(r, LONGPOLL)


@pytest.mark.parametrize("cursor", ["garbage", "AAAAAAAA", "x" * 300, "AAH" + "A" * 10])
def test_longpoll_undecodable_cursor_is_400(http, cursor: str) -> None:
    text = bad_input(longpoll(http, cursor), LONGPOLL)
    assert "cursor" in text


def test_longpoll_cursor_of_a_vanished_namespace_is_reset(http, server) -> None:
    gone = server.new_account()
    cursor = latest(Api(http, gone.token), "")
    server.reset_account(gone.email)  # its namespace goes with it
    r = longpoll(http, cursor)
    assert route_error(r, files.ListFolderLongpollError_validator, "reset") == {".tag": "reset"}


def _tampered(cursor: str) -> str:
    """The cursor with one byte of its signed content changed (white-box: "AAH" + unpadded base64url
    of a 32-byte HMAC, then the JSON payload)."""
    raw = bytearray(base64.urlsafe_b64decode(cursor[3:] + "=" * (-len(cursor[3:]) % 4)))
    at = raw.index(b",", 32) + 1  # the payload's second item: the folder
    raw[at] ^= 0x01
    return cursor[:3] + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def _unsigned(cursor: str, namespace_id: str) -> str:
    """What a cursor looked like before #7, naming another namespace: base64url JSON, no signature."""
    raw = base64.urlsafe_b64decode(cursor[3:] + "=" * (-len(cursor[3:]) % 4))[32:]
    fields = json.loads(raw)
    fields[0] = namespace_id
    return "AAH" + base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def test_tampered_and_hand_made_cursors_are_refused_like_garbage(http, api: Api, server, folder: str) -> None:
    api.upload_ok(f"{folder}/a", b"a")
    cursor = latest(api, folder)
    other = server.new_account()
    others = Api(http, other.token)
    others.upload_ok("/secret", b"s")
    victim_ns = ok_json(others.rpc("users/get_current_account", None))["root_info"]["root_namespace_id"]
    api.upload_ok(f"{folder}/b", b"b")
    assert changes(longpoll(http, cursor)) is True  # the genuine one works
    for bad in (_tampered(cursor), _unsigned(cursor, victim_ns), cursor[:-2]):
        # The answer a garbage cursor gets today, on both routes: 400 'Invalid "cursor" parameter'.
        assert 'Invalid "cursor" parameter' in bad_input(longpoll(http, bad), LONGPOLL)
        assert 'Invalid "cursor" parameter' in bad_input(api.rpc(CONTINUE, {"cursor": bad}), CONTINUE)
        assert 'Invalid "cursor" parameter' in bad_input(others.rpc(CONTINUE, {"cursor": bad}), CONTINUE)
    # Another account's genuine cursor: refused on continue (longpoll has no account to check).
    assert 'Invalid "cursor" parameter' in bad_input(others.rpc(CONTINUE, {"cursor": cursor}), CONTINUE)
    listed = ok_json(api.rpc("files/list_folder", {"path": folder}))["cursor"]
    assert 'Invalid "cursor" parameter' in bad_input(others.rpc(CONTINUE, {"cursor": listed}), CONTINUE)
    assert 'Invalid "cursor" parameter' in bad_input(others.rpc(CONTINUE, {"cursor": _tampered(listed)}),
                                                     CONTINUE)
    assert 'Invalid "cursor" parameter' in bad_input(api.rpc(CONTINUE, {"cursor": _tampered(listed)}), CONTINUE)
    assert continue_names(api, cursor) == [("file", f"{folder}/b")]  # still good for its own account


def test_longpoll_needs_no_token_and_answers_exact_json(http, api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/a", b"a")
    cursor = latest(api, folder)
    api.upload_ok(f"{folder}/b", b"b")
    r = longpoll(http, cursor)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", describe(r)
    request_id(r)
    assert r.content == b'{"changes": true}'


# -- longpoll: when it answers --------------------------------------------------------------------

def test_longpoll_mid_pagination_has_changes_at_once(http, api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/a", b"a")
    api.upload_ok(f"{folder}/b", b"b")
    page = ok_json(api.rpc("files/list_folder", {"path": folder, "limit": 1}))
    assert page["has_more"] is True
    t0 = time.monotonic()
    assert changes(longpoll(http, page["cursor"])) is True
    assert time.monotonic() - t0 < 2


def test_longpoll_returns_soon_after_an_upload_under_the_folder(http, api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/sub/old", b"o")
    cursor = latest(api, folder, recursive=True)
    fut = in_background(lambda: (longpoll(http, cursor), time.monotonic()))
    time.sleep(1.0)
    assert not fut.done(), "longpoll answered before anything changed"
    api.upload_ok(f"{folder}/sub/new", b"n")
    uploaded = time.monotonic()
    resp, answered = fut.result(timeout=10)
    assert changes(resp) is True
    assert answered - uploaded < 1.5
    assert continue_names(api, cursor) == [("file", f"{folder}/sub/new")]


def test_longpoll_sees_a_deletion_marker(http, api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/gone", b"g")
    cursor = latest(api, folder)
    r = api.rpc("files/delete_v2", {"path": f"{folder}/gone"})
    if r.status_code == 400 and b"Unknown API function" in r.content:
        pytest.skip("files/delete_v2 is not served yet")
    ok_json(r)
    assert changes(longpoll(http, cursor)) is True


def test_longpoll_many_waiters_wake_together(http, api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/seed", b"s")
    cursor = latest(api, folder)
    futs = [in_background(lambda: longpoll(http, cursor)) for _ in range(20)]
    time.sleep(1.0)
    api.upload_ok(f"{folder}/wake", b"w")
    assert all(changes(f.result(timeout=10)) for f in futs)


def test_longpoll_sees_a_write_made_by_another_server_process(http, api: Api, server, folder: str) -> None:
    """Two `localbox serve` processes on one data dir (as nodes sharing a store): a write through the
    second wakes a longpoll held by the first."""
    api.upload_ok(f"{folder}/seed", b"s")
    cursor = latest(api, folder)
    fut = in_background(lambda: longpoll(http, cursor))
    with running_server(server.data_dir) as other, httpx.Client(base_url=other.url, trust_env=False,
                                                                timeout=60) as http2:
        time.sleep(0.5)
        assert not fut.done()
        Api(http2, api.token).upload_ok(f"{folder}/from-node-2", b"2")
        written = time.monotonic()
        assert changes(fut.result(timeout=10)) is True
        assert time.monotonic() - written < 1.5


def test_longpoll_times_out_without_changes_under_its_folder(http, account) -> None:
    """All the "no change" cases in one 30 s window: changes outside the folder, below a
    non-recursive cursor's children, and in another account do not end the wait."""
    api = Api(http, account.token)
    api.upload_ok("/watched/sub/seed", b"s")
    api.upload_ok("/elsewhere/seed", b"s")
    flat, deep = latest(api, "/watched"), latest(api, "/watched", recursive=True)
    t0 = time.monotonic()
    polls = {name: in_background(lambda c=c: longpoll(http, c)) for name, c in
             (("flat", flat), ("deep", deep))}
    stop = threading.Event()

    def churn() -> None:  # keep writing where neither poll looks
        i = 0
        while not stop.is_set():
            api.upload_ok(f"/elsewhere/f{i}", b"e")
            api.upload_ok("/watched-sibling", str(i).encode(), mode="overwrite")
            i += 1
            stop.wait(2)

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        time.sleep(3)
        api.upload_ok("/watched/sub/deeper", b"d")  # not a direct child: only `deep` sees it
        assert changes(polls["deep"].result(timeout=10)) is True
        assert time.monotonic() - t0 < 10
        assert changes(polls["flat"].result(timeout=60)) is False
    finally:
        stop.set()
        writer.join()
    elapsed = time.monotonic() - t0
    assert 30 <= elapsed < 36, elapsed


def test_pending_longpoll_does_not_hold_up_a_shutdown(tmp_path) -> None:
    """SIGTERM with a 480 s longpoll open: it answers `changes: false` at once and the server exits."""
    with running_server(tmp_path / "data") as srv, httpx.Client(base_url=srv.url, trust_env=False,
                                                                timeout=60) as client:
        acct = srv.new_account()
        cursor = latest(Api(client, acct.token), "")
        fut = in_background(lambda: longpoll(client, cursor, 480))
        time.sleep(0.5)
        assert not fut.done()
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 5
        assert changes(fut.result(timeout=5)) is False
