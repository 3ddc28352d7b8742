"""files/get_metadata, files/download (incl. Range), files/list_folder(+continue), users/get_current_account,
check/user — through the official SDK."""

from __future__ import annotations

import pytest
from dropbox import common, files, users
from harness import make_sdk
from sdk_helpers import (
    api_error,
    assert_file,
    blob,
    content_hash,
    download,
    files_only,
    list_all,
    tag_path,
)

pytestmark = pytest.mark.conformance


# -- get_metadata -------------------------------------------------------------------------
def test_get_metadata_file_and_folder(dbx) -> None:
    data = blob(321, "md")
    up = dbx.files_upload(data, "/Meta/Info.bin")
    md = dbx.files_get_metadata("/Meta/Info.bin")
    assert_file(md, "/Meta/Info.bin", data)
    assert (md.id, md.rev, md.client_modified, md.server_modified) == (
        up.id, up.rev, up.client_modified, up.server_modified)
    folder = dbx.files_get_metadata("/meta")
    assert isinstance(folder, files.FolderMetadata)
    assert folder.name == "Meta" and folder.path_display == "/Meta" and folder.path_lower == "/meta"
    # by id
    by_id = dbx.files_get_metadata(up.id)
    assert isinstance(by_id, files.FileMetadata)
    assert by_id.id == up.id and by_id.content_hash == content_hash(data)


def test_get_metadata_not_found(dbx) -> None:
    err = api_error(dbx.files_get_metadata, "/does/not/exist.txt")
    assert isinstance(err, files.GetMetadataError)
    assert tag_path(err) == "path/not_found"


# -- download -------------------------------------------------------------------------------
def test_download_full(dbx) -> None:
    data = blob(5 * 1024 * 1024 + 3, "dl")
    up = dbx.files_upload(data, "/dl/full.bin")
    md, body, resp = download(dbx, "/dl/full.bin")
    assert body == data
    assert resp.status_code == 200
    assert_file(md, "/dl/full.bin", data)
    assert md.rev == up.rev


@pytest.mark.parametrize(
    ("header", "lo", "hi"),
    [("bytes=0-99", 0, 100), ("bytes=100-199", 100, 200), ("bytes=990-", 990, 1000),
     ("bytes=-10", 990, 1000), ("bytes=0-0", 0, 1), ("bytes=500-5000", 500, 1000)],
)
def test_download_range(dbx, header: str, lo: int, hi: int) -> None:
    data = blob(1000, "range")
    dbx.files_upload(data, "/dl/range.bin")
    md, body, resp = download(dbx, "/dl/range.bin", extra_headers={"Range": header})
    assert body == data[lo:hi]
    assert resp.status_code == 206
    assert resp.headers.get("Content-Range") == f"bytes {lo}-{hi - 1}/1000"
    # metadata describes the whole file, not the range
    assert md.size == 1000 and md.content_hash == content_hash(data)


def test_download_not_found(dbx) -> None:
    err = api_error(dbx.files_download, "/nothing-here.bin")
    assert isinstance(err, files.DownloadError)
    assert tag_path(err) == "path/not_found"


def test_download_folder_is_not_file(dbx) -> None:
    dbx.files_upload(b"x", "/dlf/inner.txt")
    assert tag_path(api_error(dbx.files_download, "/dlf")) == "path/not_file"


@pytest.mark.parametrize("path", ["/Ünï/café.txt", "/emoji/😀 party 🎉.txt", "/mix/naïve résumé ñ 日本.md"])
def test_unicode_names_round_trip(dbx, path: str) -> None:
    data = blob(77, "uni")
    up = dbx.files_upload(data, path)
    assert_file(up, path, data)
    md, body, resp = download(dbx, path)
    assert body == data
    # the Dropbox-API-Result header must be ASCII (escaped JSON), else the SDK decodes latin-1 mojibake
    assert resp.headers["Dropbox-API-Result"].isascii()
    assert md.name == path.rsplit("/", 1)[1]
    assert md.path_display == path
    assert md.path_lower == path.lower()
    # lookups by the lower-cased path and listing show the same name
    assert dbx.files_get_metadata(path.lower()).path_display == path
    parent = path.rsplit("/", 1)[0]
    assert [m.name for m in list_all(dbx, parent)] == [path.rsplit("/", 1)[1]]


# -- list_folder ------------------------------------------------------------------------------
def test_list_folder_root_of_new_account_is_empty(dbx) -> None:
    res = dbx.files_list_folder("")
    assert list(res.entries) == [] and res.has_more is False and res.cursor


def test_list_folder_pagination_with_limit_and_continue(dbx) -> None:
    names = [f"item-{i:02d}.txt" for i in range(11)]
    datas = {n: blob(10 + i, n) for i, n in enumerate(names)}
    for n in names:
        dbx.files_upload(datas[n], f"/pages/{n}")
    dbx.files_upload(b"nested", "/pages/Sub/nested.txt")

    first = dbx.files_list_folder("/pages", limit=4)
    assert first.has_more is True
    assert 0 < len(first.entries) < 12
    seen = list(first.entries)
    res = first
    pages = 1
    while res.has_more:
        res = dbx.files_list_folder_continue(res.cursor)
        seen.extend(res.entries)
        pages += 1
    assert pages >= 3
    got = [m.name for m in seen]
    assert sorted(got) == sorted([*names, "Sub"]), got  # each entry exactly once
    by_name = {m.name: m for m in seen}
    assert isinstance(by_name["Sub"], files.FolderMetadata)
    for n in names:
        m = by_name[n]
        assert isinstance(m, files.FileMetadata)
        assert m.path_display == f"/pages/{n}" and m.content_hash == content_hash(datas[n])
        assert m.size == len(datas[n])
    # recursive listing includes the nested file and the folder itself
    rec = list_all(dbx, "/pages", recursive=True, limit=3)
    rec_paths = {m.path_lower for m in rec}
    assert "/pages/sub/nested.txt" in rec_paths and "/pages/sub" in rec_paths
    assert len(files_only(rec)) == 12
    assert len(rec) == len(rec_paths), "duplicates across pages"


def test_list_folder_continue_after_changes_sees_new_file(dbx) -> None:
    dbx.files_upload(b"1", "/cont/one.txt")
    res = dbx.files_list_folder("/cont")
    assert [m.name for m in res.entries] == ["one.txt"] and not res.has_more
    dbx.files_upload(b"2", "/cont/two.txt")
    later = dbx.files_list_folder_continue(res.cursor)
    assert "two.txt" in [m.name for m in later.entries]
    assert "one.txt" not in [m.name for m in later.entries]


def test_list_folder_errors(dbx) -> None:
    err = api_error(dbx.files_list_folder, "/no/such/folder")
    assert isinstance(err, files.ListFolderError)
    assert tag_path(err) == "path/not_found"
    dbx.files_upload(b"f", "/lf/file.txt")
    assert tag_path(api_error(dbx.files_list_folder, "/lf/file.txt")) == "path/not_folder"


def test_list_folder_is_per_account(server, dbx, sdk_for) -> None:
    dbx.files_upload(b"mine", "/isolated.txt")
    other = sdk_for(server.new_account().token)
    assert list(other.files_list_folder("").entries) == []
    assert tag_path(api_error(other.files_get_metadata, "/isolated.txt")) == "path/not_found"


# -- users / check --------------------------------------------------------------------------------
def test_get_current_account(server) -> None:
    acct = server.new_account(name="Émile Zola")
    dbx = make_sdk(server, acct.token)
    me = dbx.users_get_current_account()
    assert isinstance(me, users.FullAccount)
    assert me.account_id == acct.account_id
    assert len(me.account_id) == 40 and me.account_id.startswith("dbid:")
    assert me.email == acct.email
    assert me.name.given_name == "Émile" and me.name.surname == "Zola"
    assert me.name.display_name == "Émile Zola"
    assert me.disabled is False
    assert isinstance(me.root_info, common.RootInfo)
    assert me.root_info.root_namespace_id and me.root_info.home_namespace_id
    assert isinstance(me.root_info, common.UserRootInfo)
    assert me.root_info.root_namespace_id == me.root_info.home_namespace_id
    # a second account has its own id and namespace
    other = make_sdk(server, server.new_account().token).users_get_current_account()
    assert other.account_id != me.account_id
    assert other.root_info.root_namespace_id != me.root_info.root_namespace_id


def test_account_create_prints_well_formed_id(server) -> None:
    acct = server.new_account()
    assert acct.account_id.startswith("dbid:") and len(acct.account_id) == 40


@pytest.mark.parametrize("query", ["ping", "", "héllo 😀", "x" * 500])
def test_check_user_echoes(dbx, query: str) -> None:
    assert dbx.check_user(query).result == query
