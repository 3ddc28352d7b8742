"""Authentication, scopes and the Dropbox-API-Path-Root header, as the SDK sees them."""

from __future__ import annotations

import pytest
from dropbox import common, files
from dropbox.exceptions import AuthError, PathRootError
from harness import make_sdk
from sdk_helpers import (
    api_error,
    assert_file,
    blob,
    cursor,
    download,
    finish_arg,
    list_all,
    start_closed,
    tag_path,
)

pytestmark = pytest.mark.conformance

ALL_SCOPES = ["files.content.write", "files.content.read", "files.metadata.read", "files.metadata.write",
              "account_info.read"]

# (scope the route requires, how to call the route)
ROUTE_CALLS = {
    "upload": ("files.content.write", lambda d: d.files_upload(b"x", "/s.txt")),
    "upload_session/start": ("files.content.write", lambda d: d.files_upload_session_start(b"x")),
    "upload_session/start_batch": ("files.content.write", lambda d: d.files_upload_session_start_batch(1)),
    "upload_session/append_v2": ("files.content.write",
                                 lambda d: d.files_upload_session_append_v2(b"x", cursor("zzzz", 0))),
    "upload_session/append": ("files.content.write",
                              lambda d: d.files_upload_session_append(b"x", "zzzz", 0)),
    "upload_session/append_batch": ("files.content.write", lambda d: d.files_upload_session_append_batch(
        b"", [files.UploadSessionAppendBatchArgEntry(cursor=cursor("zzzz", 0), length=0)])),
    "upload_session/finish": ("files.content.write", lambda d: d.files_upload_session_finish(
        b"", cursor("zzzz", 0), files.CommitInfo(path="/s.txt"))),
    "upload_session/finish_batch": (
        "files.content.write", lambda d: d.files_upload_session_finish_batch([finish_arg("zzzz", 0, "/s")])),
    "upload_session/finish_batch_v2": (
        "files.content.write", lambda d: d.files_upload_session_finish_batch_v2([finish_arg("zz", 0, "/s")])),
    "upload_session/finish_batch/check": ("files.content.write",
                                          lambda d: d.files_upload_session_finish_batch_check("nope")),
    "download": ("files.content.read", lambda d: d.files_download("/s.txt")),
    "get_metadata": ("files.metadata.read", lambda d: d.files_get_metadata("/s.txt")),
    "list_folder": ("files.metadata.read", lambda d: d.files_list_folder("")),
    "list_folder/continue": ("files.metadata.read", lambda d: d.files_list_folder_continue("bogus-cursor")),
    "users/get_current_account": ("account_info.read", lambda d: d.users_get_current_account()),
    "check/user": ("account_info.read", lambda d: d.check_user("hi")),
}


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
def test_unknown_token_is_invalid_access_token(server, route: str) -> None:
    bad = make_sdk(server, "sl.this-token-was-never-issued-" + "x" * 40)
    with pytest.raises(AuthError) as ei:
        ROUTE_CALLS[route][1](bad)
    assert ei.value.error.is_invalid_access_token(), ei.value.error


# Tokens holding exactly one unrelated scope, chosen so no scope hierarchy could imply the missing one.
WITHOUT = {"files.content.write": "files.metadata.read",
           "files.content.read": "account_info.read",
           "files.metadata.read": "account_info.read",
           "account_info.read": "files.metadata.read"}


@pytest.fixture(scope="module")
def single_scope_tokens(server) -> dict[str, str]:
    """scope -> a token of one module-wide account that holds only that scope."""
    acct = server.new_account()
    return {scope: server.new_token(acct.email, scopes=[scope]) for scope in set(WITHOUT.values())}


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
def test_missing_scope(server, single_scope_tokens, route: str) -> None:
    required, call = ROUTE_CALLS[route]
    token = single_scope_tokens[WITHOUT[required]]
    with pytest.raises(AuthError) as ei:
        call(make_sdk(server, token))
    err = ei.value.error
    assert err.is_missing_scope(), err
    assert err.get_missing_scope().required_scope == required


def test_scoped_token_allows_its_routes(server, account) -> None:
    writer = make_sdk(server, server.new_token(account.email, scopes=["files.content.write"]))
    md = writer.files_upload(b"scoped", "/scoped.txt")
    reader = make_sdk(server, server.new_token(account.email, scopes=["files.content.read"]))
    assert download(reader, "/scoped.txt")[1] == b"scoped"
    meta = make_sdk(server, server.new_token(account.email, scopes=["files.metadata.read"]))
    assert meta.files_get_metadata("/scoped.txt").id == md.id
    info = make_sdk(server, server.new_token(account.email, scopes=["account_info.read"]))
    assert info.users_get_current_account().account_id == account.account_id


def test_token_without_scope_flag_has_all_scopes(server, account) -> None:
    explicit = make_sdk(server, server.new_token(account.email, scopes=ALL_SCOPES))
    default = make_sdk(server, server.new_token(account.email))
    for d in (explicit, default):
        sid = start_closed(d, b"all")
        (r,) = d.files_upload_session_finish_batch_v2([finish_arg(sid, 3, "/all.txt")]).entries
        assert r.is_success()  # 2nd time: identical content at the target is not a conflict
        assert download(d, "/all.txt")[1] == b"all"
        d.files_list_folder("")
        assert d.users_get_current_account().email == account.email


def test_tokens_of_one_account_share_its_files(server, account) -> None:
    t2 = make_sdk(server, server.new_token(account.email))
    t1 = make_sdk(server, account.token)
    md = t1.files_upload(b"shared", "/two-tokens.txt")
    assert t2.files_get_metadata("/two-tokens.txt").id == md.id


# -- Dropbox-API-Path-Root ----------------------------------------------------------------------
def _root_ns(dbx) -> str:
    return str(dbx.users_get_current_account().root_info.root_namespace_id)


def test_path_root_root_mode_with_own_namespace(dbx) -> None:
    data = blob(20, "pr")
    dbx.files_upload(data, "/pr/file.txt")
    nsid = _root_ns(dbx)
    rooted = dbx.with_path_root(common.PathRoot.root(nsid))
    assert [m.name for m in list_all(rooted, "/pr")] == ["file.txt"]
    md = rooted.files_upload(blob(5), "/pr/via-root.txt")
    assert dbx.files_get_metadata("/pr/via-root.txt").id == md.id
    assert rooted.users_get_current_account().root_info.root_namespace_id == nsid


def test_path_root_root_mode_wrong_namespace_is_invalid_root(server, dbx) -> None:
    nsid = _root_ns(dbx)
    other_ns = _root_ns(make_sdk(server, server.new_account().token))
    for wrong in (other_ns, "9999999999"):
        rooted = dbx.with_path_root(common.PathRoot.root(wrong))
        with pytest.raises(PathRootError) as ei:
            rooted.files_list_folder("")
        err = ei.value.error
        assert err.is_invalid_root(), err
        info = err.get_invalid_root()
        assert str(info.root_namespace_id) == nsid  # tells the caller the right root


def test_path_root_namespace_id_other_is_no_permission(server, dbx) -> None:
    other_ns = _root_ns(make_sdk(server, server.new_account().token))
    for ns in (other_ns, "1234567890"):
        with pytest.raises(PathRootError) as ei:
            dbx.with_path_root(common.PathRoot.namespace_id(ns)).files_get_metadata("/x")
        assert ei.value.error.is_no_permission(), ei.value.error
    # also on an upload route
    with pytest.raises(PathRootError):
        dbx.with_path_root(common.PathRoot.namespace_id(other_ns)).files_upload(b"x", "/x.txt")


def test_path_root_namespace_id_own_and_home(dbx) -> None:
    dbx.files_upload(b"home", "/home.txt")
    nsid = _root_ns(dbx)
    own = dbx.with_path_root(common.PathRoot.namespace_id(nsid))
    assert download(own, "/home.txt")[1] == b"home"
    home = dbx.with_path_root(common.PathRoot.home)
    assert_file(home.files_get_metadata("/home.txt"), "/home.txt", b"home")
    sid = start_closed(home, b"hb")
    (r,) = home.files_upload_session_finish_batch_v2([finish_arg(sid, 2, "/home-batch.txt")]).entries
    assert r.is_success()
    assert download(dbx, "/home-batch.txt")[1] == b"hb"


def test_path_root_invalid_root_on_upload_route_does_not_write(server, dbx) -> None:
    rooted = dbx.with_path_root(common.PathRoot.root("9999999999"))
    with pytest.raises(PathRootError):
        rooted.files_upload(b"nope", "/should-not-exist.txt")
    with pytest.raises(PathRootError):
        rooted.files_upload_session_start(b"nope")
    assert tag_path(api_error(dbx.files_get_metadata, "/should-not-exist.txt")) == "path/not_found"
