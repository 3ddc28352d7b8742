"""Folders, deletes, moves, copies, revisions and restores on the wire: exact JSON, 409 unions, 400 limits."""

from __future__ import annotations

import time
from typing import Any

import pytest
from _apiwire import Api, bad_input, ok_json, route_error
from dropbox import async_, files

pytestmark = pytest.mark.api


def _poll(api: Api, route: str, job_id: str, validator: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = ok_json(api.rpc(route, {"async_job_id": job_id}), validator)
        if body[".tag"] == "complete":
            return dict(body)
        assert body == {".tag": "in_progress"}
        time.sleep(0.05)
    raise AssertionError("job did not complete")


def test_create_folder_v2_exact_result(api: Api, folder: str) -> None:
    body = ok_json(api.rpc("files/create_folder_v2", {"path": f"{folder}/New Folder"}),
                   files.CreateFolderResult_validator)
    md = body["metadata"]
    assert set(md) == {"name", "path_lower", "path_display", "id"}  # a FolderMetadata struct: no .tag
    assert md["name"] == "New Folder" and md["path_display"] == f"{folder}/New Folder"
    assert md["path_lower"] == md["path_display"].lower() and md["id"].startswith("id:")
    again = api.rpc("files/create_folder_v2", {"path": f"{folder}/new folder"})
    route_error(again, files.CreateFolderError_validator, "path", "conflict", "folder")
    assert again.json()["error_summary"].startswith("path/conflict/folder/")


def test_create_folder_argument_limits(api: Api, folder: str) -> None:
    bad_input(api.rpc("files/create_folder_v2", {"path": "no-slash"}), "files/create_folder_v2")
    bad_input(api.rpc("files/create_folder_v2", {"path": f"{folder}/x", "autorename": 1}), "files/create_folder_v2")
    many = {"paths": [f"{folder}/p{i}" for i in range(10_001)]}
    bad_input(api.rpc("files/create_folder_batch", many), "files/create_folder_batch")


def test_create_folder_batch_complete_shape(api: Api, folder: str) -> None:
    body = ok_json(api.rpc("files/create_folder_batch", {"paths": [f"{folder}/a", f"{folder}/a"]}),
                   files.CreateFolderBatchLaunch_validator)
    assert body[".tag"] == "complete"
    ok, failed = body["entries"]
    assert ok[".tag"] == "success" and ".tag" not in ok["metadata"]
    assert failed == {".tag": "failure", "failure": {".tag": "path", "path": {
        ".tag": "conflict", "conflict": {".tag": "folder"}}}}


def test_delete_v2_and_errors(api: Api, folder: str) -> None:
    up = api.upload_ok(f"{folder}/gone.txt", b"bye")
    body = ok_json(api.rpc("files/delete_v2", {"path": f"{folder}/gone.txt"}), files.DeleteResult_validator)
    assert body["metadata"] == {".tag": "file", **up}
    resp = api.rpc("files/delete_v2", {"path": f"{folder}/gone.txt"})
    route_error(resp, files.DeleteError_validator, "path_lookup", "not_found")
    assert resp.json()["error_summary"].startswith("path_lookup/not_found/")
    bad_input(api.rpc("files/delete_batch", {"entries": [{"path": f"{folder}/x"}] * 1001}), "files/delete_batch")


def test_delete_batch_result_shape(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/d.txt", b"d")
    launch = ok_json(api.rpc("files/delete_batch", {"entries": [{"path": f"{folder}/d.txt"},
                                                                {"path": f"{folder}/none"}]}),
                     files.DeleteBatchLaunch_validator)
    assert set(launch) == {".tag", "async_job_id"} and launch[".tag"] == "async_job_id"
    done = _poll(api, "files/delete_batch/check", launch["async_job_id"], files.DeleteBatchJobStatus_validator)
    ok, failed = done["entries"]
    assert ok[".tag"] == "success" and ok["metadata"][".tag"] == "file"
    assert failed == {".tag": "failure", "failure": {".tag": "path_lookup", "path_lookup": {".tag": "not_found"}}}
    resp = api.rpc("files/delete_batch/check", {"async_job_id": "dbjid:unknown"})
    route_error(resp, async_.PollError_validator, "invalid_async_job_id")


def test_move_and_copy_v2_shapes(api: Api, folder: str) -> None:
    up = api.upload_ok(f"{folder}/m.txt", b"move me")
    moved = ok_json(api.rpc("files/move_v2", {"from_path": f"{folder}/m.txt", "to_path": f"{folder}/sub/M.txt"}),
                    files.RelocationResult_validator)["metadata"]
    assert moved[".tag"] == "file" and moved["id"] == up["id"] and moved["path_display"] == f"{folder}/sub/M.txt"
    assert moved["content_hash"] == up["content_hash"] and moved["size"] == up["size"]
    copied = ok_json(api.rpc("files/copy_v2", {"from_path": f"{folder}/sub", "to_path": f"{folder}/copy"}),
                     files.RelocationResult_validator)["metadata"]
    assert copied == {".tag": "folder", "name": "copy", "path_lower": f"{folder}/copy".lower(),
                      "path_display": f"{folder}/copy", "id": copied["id"]}
    resp = api.rpc("files/move_v2", {"from_path": f"{folder}/copy", "to_path": f"{folder}/copy/in"})
    route_error(resp, files.RelocationError_validator, "cant_move_folder_into_itself")
    resp = api.rpc("files/copy_v2", {"from_path": f"{folder}/nothing", "to_path": f"{folder}/x"})
    route_error(resp, files.RelocationError_validator, "from_lookup", "not_found")
    assert resp.json()["error_summary"].startswith("from_lookup/not_found/")
    resp = api.rpc("files/move_v2", {"from_path": f"{folder}/copy/M.txt", "to_path": f"{folder}/sub/m.txt"})
    route_error(resp, files.RelocationError_validator, "to", "conflict", "file")


def test_relocation_batch_shape(api: Api, folder: str) -> None:
    api.upload_ok(f"{folder}/r.txt", b"r")
    launch = ok_json(api.rpc("files/copy_batch_v2", {"entries": [
        {"from_path": f"{folder}/r.txt", "to_path": f"{folder}/r2.txt"},
        {"from_path": f"{folder}/r.txt", "to_path": f"{folder}/r2.txt"}]}), files.RelocationBatchV2Launch_validator)
    done = _poll(api, "files/copy_batch/check_v2", launch["async_job_id"], files.RelocationBatchV2JobStatus_validator)
    ok, failed = done["entries"]
    assert ok[".tag"] == "success" and ok["success"][".tag"] == "file"
    assert failed == {".tag": "failure", "failure": {".tag": "relocation_error", "relocation_error": {
        ".tag": "to", "to": {".tag": "conflict", "conflict": {".tag": "file"}}}}}


def test_list_revisions_and_restore_shapes(api: Api, folder: str) -> None:
    path = f"{folder}/doc.txt"
    first = api.upload_ok(path, b"one")
    second = api.upload_ok(path, b"two", mode="overwrite")
    body = ok_json(api.rpc("files/list_revisions", {"path": path}), files.ListRevisionsResult_validator)
    assert body == {"is_deleted": False, "entries": [second, first], "has_more": False}
    resp = api.rpc("files/list_revisions", {"path": path, "limit": 101})
    bad_input(resp, "files/list_revisions")
    restored = ok_json(api.rpc("files/restore", {"path": path, "rev": first["rev"]}), files.FileMetadata_validator)
    assert restored["content_hash"] == first["content_hash"] and restored["rev"] not in (first["rev"], second["rev"])
    resp = api.rpc("files/restore", {"path": path, "rev": "abcdef0123456789"})
    route_error(resp, files.RestoreError_validator, "invalid_revision")
    resp = api.rpc("files/list_revisions", {"path": f"{folder}/none.txt"})
    route_error(resp, files.ListRevisionsError_validator, "path", "not_found")
