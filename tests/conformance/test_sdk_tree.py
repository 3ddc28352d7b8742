"""Folders, deletes, moves, copies (and their batches), revisions and restores through the official SDK."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dropbox import files
from sdk_helpers import api_error, blob, content_hash, download, list_all, tag_path

pytestmark = pytest.mark.conformance


def _paths(entries: list[Any]) -> set[str]:
    return {e.path_display for e in entries}


def _poll(check: Any, job_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = check(job_id)
        if status.is_complete():
            return status.get_complete()
        assert status.is_in_progress()
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not complete")


# -- create_folder ---------------------------------------------------------------------------------
def test_create_folder_creates_parents_and_reports_conflicts(dbx: Any) -> None:
    made = dbx.files_create_folder_v2("/Top/Mid/Leaf").metadata
    assert isinstance(made, files.FolderMetadata)
    assert (made.name, made.path_display, made.path_lower) == ("Leaf", "/Top/Mid/Leaf", "/top/mid/leaf")
    assert made.id.startswith("id:")
    assert isinstance(dbx.files_get_metadata("/top/mid"), files.FolderMetadata)
    # the same folder again, in another case: a folder conflict
    assert tag_path(api_error(dbx.files_create_folder_v2, "/TOP/mid/leaf")) == "path/conflict/folder"
    # autorename numbers a folder's whole name (folders have no extension)
    dbx.files_create_folder_v2("/Top/v1.2")
    again = dbx.files_create_folder_v2("/Top/v1.2", autorename=True).metadata
    assert again.path_display == "/Top/v1.2 (1)"
    # a file in the way, or as an ancestor
    dbx.files_upload(b"x", "/Top/file.txt")
    assert tag_path(api_error(dbx.files_create_folder_v2, "/Top/file.txt")) == "path/conflict/file"
    assert tag_path(api_error(dbx.files_create_folder_v2, "/Top/file.txt/sub")) == "path/conflict/file_ancestor"
    assert tag_path(api_error(dbx.files_create_folder_v2, "/")) == "path/malformed_path"


def test_create_folder_batch_sync_and_async(dbx: Any) -> None:
    dbx.files_create_folder_v2("/B/exists")
    done = dbx.files_create_folder_batch(["/B/one", "/B/exists", "/B/two/deep"])
    assert done.is_complete()
    entries = done.get_complete().entries
    assert [e.is_success() for e in entries] == [True, False, True]
    assert entries[0].get_success().metadata.path_display == "/B/one"
    assert tag_path(entries[1].get_failure()) == "path/conflict/folder"
    launch = dbx.files_create_folder_batch(["/B/exists", "/B/three"], autorename=True, force_async=True)
    assert launch.is_async_job_id()
    result = _poll(dbx.files_create_folder_batch_check, launch.get_async_job_id())
    assert [e.get_success().metadata.path_display for e in result.entries] == ["/B/exists (1)", "/B/three"]


# -- delete --------------------------------------------------------------------------------------
def test_delete_file_and_folder_subtree(dbx: Any) -> None:
    f = dbx.files_upload(b"bye", "/D/sub/file.txt")
    dbx.files_upload(b"keep", "/D/keep.txt")
    gone = dbx.files_delete_v2("/D/sub").metadata
    assert isinstance(gone, files.FolderMetadata) and gone.path_display == "/D/sub"
    assert _paths(list_all(dbx, "/D", recursive=True)) == {"/D", "/D/keep.txt"}
    assert tag_path(api_error(dbx.files_get_metadata, "/D/sub/file.txt")) == "path/not_found"
    assert tag_path(api_error(dbx.files_get_metadata, f.id)) == "path/not_found"
    deleted = dbx.files_get_metadata("/D/sub/file.txt", include_deleted=True)
    assert isinstance(deleted, files.DeletedMetadata) and deleted.path_display == "/D/sub/file.txt"
    assert tag_path(api_error(dbx.files_delete_v2, "/D/sub")) == "path_lookup/not_found"
    # the space goes back
    assert dbx.users_get_space_usage().used == len(b"keep")


def test_delete_with_parent_rev(dbx: Any) -> None:
    first = dbx.files_upload(b"v1", "/rev.txt")
    dbx.files_upload(b"v2", "/rev.txt", mode=files.WriteMode.overwrite)
    assert tag_path(api_error(dbx.files_delete_v2, "/rev.txt", parent_rev=first.rev)) == "path_write/conflict/file"
    current = dbx.files_get_metadata("/rev.txt")
    assert dbx.files_delete_v2("/rev.txt", parent_rev=current.rev).metadata.rev == current.rev


def test_delete_batch(dbx: Any) -> None:
    dbx.files_upload(b"1", "/DB/a.txt")
    dbx.files_upload(b"2", "/DB/b.txt")
    launch = dbx.files_delete_batch([files.DeleteArg("/DB/a.txt"), files.DeleteArg("/DB/missing"),
                                     files.DeleteArg("/db/B.TXT")])
    assert launch.is_async_job_id()
    result = _poll(dbx.files_delete_batch_check, launch.get_async_job_id())
    assert [e.is_success() for e in result.entries] == [True, False, True]
    assert result.entries[2].get_success().metadata.path_display == "/DB/b.txt"
    assert tag_path(result.entries[1].get_failure()) == "path_lookup/not_found"
    assert list_all(dbx, "/DB") == []


def test_batch_check_rejects_other_kinds_and_ids(dbx: Any) -> None:
    launch = dbx.files_delete_batch([files.DeleteArg("/nothing")])
    job = launch.get_async_job_id()
    _poll(dbx.files_delete_batch_check, job)
    # a delete job is not a copy job
    assert tag_path(api_error(dbx.files_copy_batch_check_v2, job)) == "invalid_async_job_id"
    assert tag_path(api_error(dbx.files_delete_batch_check, "dbjid:nope")) == "invalid_async_job_id"


# -- move / copy ------------------------------------------------------------------------------------
def test_move_folder_keeps_ids_and_contents(dbx: Any) -> None:
    data = blob(5000, "mv")
    up = dbx.files_upload(data, "/M/src/deep/f.bin")
    folder_id = dbx.files_get_metadata("/M/src").id
    moved = dbx.files_move_v2("/M/src", "/M/New/dst").metadata
    assert isinstance(moved, files.FolderMetadata)
    assert (moved.path_display, moved.id) == ("/M/New/dst", folder_id)
    md, body, _ = download(dbx, "/m/new/dst/deep/f.bin")
    assert body == data and md.id == up.id and md.path_display == "/M/New/dst/deep/f.bin"
    assert md.content_hash == content_hash(data)
    assert tag_path(api_error(dbx.files_get_metadata, "/M/src")) == "path/not_found"
    # an id follows the file
    assert dbx.files_get_metadata(up.id).path_display == "/M/New/dst/deep/f.bin"


def test_move_case_only_rename(dbx: Any) -> None:
    dbx.files_upload(b"c", "/case/Name.txt")
    renamed = dbx.files_move_v2("/case/Name.txt", "/case/NAME.txt").metadata
    assert renamed.path_display == "/case/NAME.txt"
    assert [e.name for e in list_all(dbx, "/case")] == ["NAME.txt"]
    assert tag_path(api_error(dbx.files_move_v2, "/case/NAME.txt", "/case/NAME.txt")) == "to/conflict/file"


def test_move_errors(dbx: Any) -> None:
    dbx.files_create_folder_v2("/E/a/b")
    dbx.files_upload(b"1", "/E/x.txt")
    dbx.files_upload(b"2", "/E/y.txt")
    assert tag_path(api_error(dbx.files_move_v2, "/E/a", "/E/a/b/c")) == "cant_move_folder_into_itself"
    assert tag_path(api_error(dbx.files_move_v2, "/E/nope", "/E/z")) == "from_lookup/not_found"
    assert tag_path(api_error(dbx.files_move_v2, "/E/x.txt", "/E/y.txt")) == "to/conflict/file"
    assert tag_path(api_error(dbx.files_move_v2, "/E/x.txt", "/E/a")) == "to/conflict/folder"
    assert tag_path(api_error(dbx.files_move_v2, "/E/y.txt", "/E/x.txt/in")) == "to/conflict/file_ancestor"
    renamed = dbx.files_move_v2("/E/x.txt", "/E/y.txt", autorename=True).metadata
    assert renamed.path_display == "/E/y (1).txt"


def test_copy_shares_content_and_gets_new_ids(dbx: Any, server: Any) -> None:
    data = blob(3 * 1024 * 1024, "cp")
    up = dbx.files_upload(data, "/C/src/big.bin")
    blocks_before = _disk_bytes(server)
    copied = dbx.files_copy_v2("/C/src", "/C/copy").metadata
    assert isinstance(copied, files.FolderMetadata) and copied.path_display == "/C/copy"
    md, body, _ = download(dbx, "/C/copy/big.bin")
    assert body == data and md.id != up.id and md.rev != up.rev and md.content_hash == up.content_hash
    assert dbx.files_get_metadata("/C/src/big.bin").id == up.id  # the source stays
    assert _disk_bytes(server) == blocks_before  # no byte was copied
    assert dbx.users_get_space_usage().used == 2 * len(data)
    # copying onto itself needs autorename
    assert tag_path(api_error(dbx.files_copy_v2, "/C/src/big.bin", "/C/src/big.bin")) == "to/conflict/file"
    again = dbx.files_copy_v2("/C/src/big.bin", "/C/src/big.bin", autorename=True).metadata
    assert again.path_display == "/C/src/big (1).bin"


def _disk_bytes(server: Any) -> int:
    return int(server.stored_blob_bytes())  # the data dir's blobs folder, or the S3 prefix


def test_move_and_copy_batches(dbx: Any) -> None:
    dbx.files_upload(b"a", "/MB/a.txt")
    dbx.files_upload(b"b", "/MB/b.txt")
    launch = dbx.files_move_batch_v2([files.RelocationPath("/MB/a.txt", "/MB/out/a.txt"),
                                      files.RelocationPath("/MB/gone.txt", "/MB/out/gone.txt")])
    result = _poll(dbx.files_move_batch_check_v2, launch.get_async_job_id())
    assert result.entries[0].get_success().path_display == "/MB/out/a.txt"
    assert tag_path(result.entries[1].get_failure()) == "relocation_error/from_lookup/not_found"
    launch = dbx.files_copy_batch_v2([files.RelocationPath("/MB/b.txt", "/MB/out/a.txt")], autorename=True)
    result = _poll(dbx.files_copy_batch_check_v2, launch.get_async_job_id())
    assert result.entries[0].get_success().path_display == "/MB/out/a (1).txt"
    assert _paths(list_all(dbx, "/MB", recursive=True)) == {
        "/MB", "/MB/b.txt", "/MB/out", "/MB/out/a.txt", "/MB/out/a (1).txt"}


# -- revisions and restore ----------------------------------------------------------------------------
def test_list_revisions_and_restore(dbx: Any) -> None:
    revs = [dbx.files_upload(f"version {i}".encode(), "/R/doc.txt", mode=files.WriteMode.overwrite).rev
            for i in range(3)]
    listed = dbx.files_list_revisions("/R/doc.txt")
    assert not listed.is_deleted and listed.server_deleted is None
    assert [e.rev for e in listed.entries] == revs[::-1]
    assert [e.rev for e in dbx.files_list_revisions("/R/doc.txt", limit=2).entries] == revs[:0:-1]
    older = dbx.files_list_revisions("/R/doc.txt", before_rev=revs[2])
    assert [e.rev for e in older.entries] == revs[1::-1]
    restored = dbx.files_restore("/R/doc.txt", revs[0])
    assert restored.rev not in revs
    assert download(dbx, "/R/doc.txt")[1] == b"version 0"
    assert tag_path(api_error(dbx.files_restore, "/R/doc.txt", "0123456789abcdef")) == "invalid_revision"
    # after a delete: is_deleted, and the history stays restorable
    dbx.files_delete_v2("/R/doc.txt")
    after = dbx.files_list_revisions("/R/doc.txt")
    assert after.is_deleted and after.server_deleted is not None
    assert restored.rev in [e.rev for e in after.entries]
    dbx.files_restore("/R/doc.txt", revs[1])
    assert download(dbx, "/R/doc.txt")[1] == b"version 1"
    assert tag_path(api_error(dbx.files_list_revisions, "/R")) == "path/not_file"
    assert tag_path(api_error(dbx.files_list_revisions, "/R/none.txt")) == "path/not_found"
    by_id = dbx.files_list_revisions(restored.id, mode=files.ListRevisionsMode.id)
    assert len(by_id.entries) >= 4
    assert tag_path(api_error(dbx.files_list_revisions, "/R/doc.txt", mode=files.ListRevisionsMode.id,
                              before_rev=revs[1])) == "before_rev_not_supported"


# -- the change feed ----------------------------------------------------------------------------------
def test_cursor_reports_adds_moves_and_deletes(dbx: Any) -> None:
    dbx.files_upload(b"1", "/F/stay.txt")
    dbx.files_upload(b"2", "/F/move/me.txt")
    dbx.files_upload(b"3", "/F/del.txt")
    cursor = dbx.files_list_folder("/F", recursive=True).cursor
    dbx.files_move_v2("/F/move", "/F/moved")
    dbx.files_delete_v2("/F/del.txt")
    dbx.files_create_folder_v2("/F/new")
    changes = dbx.files_list_folder_continue(cursor)
    seen = {(type(e).__name__, e.path_display) for e in changes.entries}
    assert seen == {
        ("DeletedMetadata", "/F/move"), ("DeletedMetadata", "/F/move/me.txt"), ("DeletedMetadata", "/F/del.txt"),
        ("FolderMetadata", "/F/moved"), ("FileMetadata", "/F/moved/me.txt"), ("FolderMetadata", "/F/new"),
    }
    assert dbx.files_list_folder_continue(changes.cursor).entries == []
    # include_deleted in a fresh listing shows the markers too
    listed = dbx.files_list_folder("/F", include_deleted=True)
    assert {e.path_display for e in listed.entries if isinstance(e, files.DeletedMetadata)} == {
        "/F/move", "/F/del.txt"}


# -- quota ------------------------------------------------------------------------------------------
def test_per_account_quota_is_reported_and_enforced(server: Any, sdk_for: Any) -> None:
    email = f"quota-{time.time_ns()}@example.com"
    server.cli("account", "create", email, "--quota", "10000")
    dbx = sdk_for(server.new_token(email))
    usage = dbx.users_get_space_usage()
    assert usage.allocation.get_individual().allocated == 10000 and usage.used == 0
    dbx.files_upload(blob(6000, "q"), "/q/a.bin")
    assert tag_path(api_error(dbx.files_upload, blob(5000, "q2"), "/q/b.bin")) == "path/insufficient_space"
    # the same through an upload session: the commit is refused, nothing is written
    session = dbx.files_upload_session_start(blob(5000, "q3"), close=True).session_id
    err = api_error(dbx.files_upload_session_finish, b"", files.UploadSessionCursor(session, 5000),
                    files.CommitInfo("/q/c.bin"))
    assert tag_path(err) == "path/insufficient_space"
    assert tag_path(api_error(dbx.files_copy_v2, "/q/a.bin", "/q/copy.bin")) == "insufficient_quota"
    # replacing a file by a smaller one frees space; the freed space can be used again
    dbx.files_upload(blob(1000, "q4"), "/q/a.bin", mode=files.WriteMode.overwrite)
    dbx.files_upload(blob(8000, "q5"), "/q/b.bin")
    assert dbx.users_get_space_usage().used == 9000
    dbx.files_delete_v2("/q/b.bin")
    assert dbx.users_get_space_usage().used == 1000
