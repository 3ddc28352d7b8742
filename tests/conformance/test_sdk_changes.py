"""files_list_folder_get_latest_cursor and files_list_folder_longpoll through the official SDK.

The SDK sends longpoll to the notify host without a token; the harness session sends every host to
the one local server, which serves all three.
"""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import dropbox
import pytest
from dropbox import files
from harness import make_sdk, running_server
from sdk_helpers import api_error

pytestmark = pytest.mark.conformance


def test_latest_cursor_then_continue_sees_only_later_changes(dbx) -> None:
    dbx.files_upload(b"old", "/Feed/old.txt")
    cursor = dbx.files_list_folder_get_latest_cursor("/feed").cursor
    first = dbx.files_list_folder_continue(cursor)
    assert first.entries == [] and first.has_more is False
    dbx.files_upload(b"new", "/Feed/New.txt")
    dbx.files_upload(b"x", "/Elsewhere/x")
    res = dbx.files_list_folder_continue(cursor)
    assert [(type(e), e.path_display) for e in res.entries] == [(files.FileMetadata, "/Feed/New.txt")]


def test_latest_cursor_path_errors(dbx) -> None:
    err = api_error(dbx.files_list_folder_get_latest_cursor, "/missing")
    assert err.is_path() and err.get_path().is_not_found()
    dbx.files_upload(b"f", "/a-file")
    err = api_error(dbx.files_list_folder_get_latest_cursor, "/a-file")
    assert err.is_path() and err.get_path().is_not_folder()


def test_longpoll_wakes_on_an_upload_from_another_client(dbx, server, account) -> None:
    dbx.files_upload(b"s", "/Watched/seed")
    cursor = dbx.files_list_folder_get_latest_cursor("/Watched", recursive=True).cursor
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: (make_sdk(server, account.token).files_list_folder_longpoll(cursor, 30),
                                   time.monotonic()))
        time.sleep(1.0)
        assert not fut.done()
        dbx.files_upload(b"n", "/Watched/deep/new.txt")
        uploaded = time.monotonic()
        res, answered = fut.result(timeout=10)
    assert isinstance(res, files.ListFolderLongpollResult)
    assert res.changes is True and res.backoff is None
    assert answered - uploaded < 1.5
    got = dbx.files_list_folder_continue(cursor).entries
    assert sorted(e.path_display for e in got) == ["/Watched/deep", "/Watched/deep/new.txt"]


def test_longpoll_needs_no_token(dbx, server) -> None:
    dbx.files_upload(b"s", "/NoToken/a")
    cursor = dbx.files_list_folder_get_latest_cursor("/NoToken").cursor
    dbx.files_upload(b"s", "/NoToken/b")
    anonymous = make_sdk(server, "not-a-valid-token")
    assert anonymous.files_list_folder_longpoll(cursor).changes is True


def test_longpoll_while_paging_has_changes(dbx) -> None:
    for name in "abc":
        dbx.files_upload(name.encode(), f"/Paged/{name}")
    page = dbx.files_list_folder("/Paged", limit=1)
    assert page.has_more
    t0 = time.monotonic()
    assert dbx.files_list_folder_longpoll(page.cursor).changes is True
    assert time.monotonic() - t0 < 2


def test_longpoll_sees_a_write_through_another_node(dbx, server, account) -> None:
    dbx.files_upload(b"s", "/Nodes/seed")
    cursor = dbx.files_list_folder_get_latest_cursor("/Nodes").cursor
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(dbx.files_list_folder_longpoll, cursor, 30)
        with running_server(server.data_dir) as node2:
            time.sleep(0.5)
            assert not fut.done()
            make_sdk(node2, account.token).files_upload(b"2", "/Nodes/from-node-2")
            assert fut.result(timeout=10).changes is True


def test_longpoll_reset_and_bad_cursor(server, account, dbx) -> None:
    cursor = dbx.files_list_folder_get_latest_cursor("").cursor
    server.reset_account(account.email)  # the account and its namespace are gone
    err = api_error(dbx.files_list_folder_longpoll, cursor)
    assert isinstance(err, files.ListFolderLongpollError) and err.is_reset()
    with pytest.raises(dropbox.exceptions.BadInputError):
        dbx.files_list_folder_longpoll("not-a-cursor")


def _flip(cursor: str) -> str:
    # White-box: "AAH" + base64url of a 32-byte HMAC then the JSON payload; change one payload byte.
    raw = bytearray(base64.urlsafe_b64decode(cursor[3:] + "=" * (-len(cursor[3:]) % 4)))
    raw[40] ^= 0x01
    return cursor[:3] + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def test_tampered_cursors_are_bad_input(dbx) -> None:
    dbx.files_upload(b"t", "/Tamper/t")
    listed = dbx.files_list_folder("/Tamper").cursor
    latest = dbx.files_list_folder_get_latest_cursor("/Tamper").cursor
    for cursor in (listed, latest):
        with pytest.raises(dropbox.exceptions.BadInputError, match='Invalid "cursor" parameter'):
            dbx.files_list_folder_continue(_flip(cursor))
        with pytest.raises(dropbox.exceptions.BadInputError, match='Invalid "cursor" parameter'):
            dbx.files_list_folder_longpoll(_flip(cursor), 30)
        assert dbx.files_list_folder_continue(cursor).entries == []


def test_cursors_survive_a_restart(server, account, dbx) -> None:
    for name in ("a", "b", "c"):
        dbx.files_upload(name.encode(), f"/Restart/{name}")
    page = dbx.files_list_folder("/Restart", limit=1)
    assert page.has_more
    latest = dbx.files_list_folder_get_latest_cursor("/Restart").cursor
    server.restart()
    dbx = make_sdk(server, account.token)
    rest = dbx.files_list_folder_continue(page.cursor)
    assert [e.name for e in page.entries + rest.entries] == ["a", "b"]
    dbx.files_upload(b"d", "/Restart/d")
    assert dbx.files_list_folder_longpoll(latest, 30).changes is True
    assert [e.name for e in dbx.files_list_folder_continue(latest).entries] == ["d"]
