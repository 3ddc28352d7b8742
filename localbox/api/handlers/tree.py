"""Folders, deletes, moves, copies (single and batch), revisions and restores: wire <-> TreeService."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from starlette.responses import Response

from localbox.api.context import Call, Services
from localbox.api.convert import (
    create_folder_entries_json,
    delete_entries_json,
    file_metadata,
    metadata,
    relocation_entries_json,
    timestamp,
)
from localbox.api.responses import json_ok
from localbox.services.jobs import COPY_BATCH, CREATE_FOLDER_BATCH, DELETE_BATCH, MOVE_BATCH
from localbox.services.tree import Outcome
from localbox.spec import files

EntriesJson = Callable[[Sequence[Outcome]], list[dict[str, Any]]]


def _complete(entries: list[dict[str, Any]]) -> Response:
    # Built directly: a 10,000-folder batch through stone's generic encoder costs about a second.
    return json_ok(json.dumps({".tag": "complete", "entries": entries}))


async def create_folder_v2(svc: Services, call: Call) -> Any:
    a = call.arg
    folder = await svc.tree.create_folder(call.caller, a.path, autorename=bool(a.autorename))
    return files.CreateFolderResult(metadata=metadata(folder))


async def create_folder_batch(svc: Services, call: Call) -> Any:
    a = call.arg
    request = {"paths": list(a.paths), "autorename": bool(a.autorename)}
    if a.force_async:
        job_id = await svc.batches.launch_job(call.caller, CREATE_FOLDER_BATCH, request)
        return files.CreateFolderBatchLaunch.async_job_id(job_id)
    return _complete(create_folder_entries_json(await svc.tree.create_folders(call.caller, request)))


async def delete_v2(svc: Services, call: Call) -> Any:
    gone = await svc.tree.delete(call.caller, call.arg.path, parent_rev=call.arg.parent_rev)
    return files.DeleteResult(metadata=metadata(gone))


async def delete_batch(svc: Services, call: Call) -> Any:
    request = {"entries": [{"path": e.path, "parent_rev": e.parent_rev} for e in call.arg.entries]}
    job_id = await svc.batches.launch_job(call.caller, DELETE_BATCH, request)
    return files.DeleteBatchLaunch.async_job_id(job_id)


async def move_v2(svc: Services, call: Call) -> Any:
    a = call.arg
    moved = await svc.tree.relocate(call.caller, a.from_path, a.to_path, copy=False, autorename=bool(a.autorename))
    return files.RelocationResult(metadata=metadata(moved))


async def copy_v2(svc: Services, call: Call) -> Any:
    a = call.arg
    copied = await svc.tree.relocate(call.caller, a.from_path, a.to_path, copy=True, autorename=bool(a.autorename))
    return files.RelocationResult(metadata=metadata(copied))


def _relocation_batch(kind: str) -> Callable[[Services, Call], Any]:
    async def launch(svc: Services, call: Call) -> Any:
        a = call.arg
        request = {"entries": [{"from_path": e.from_path, "to_path": e.to_path} for e in a.entries],
                   "autorename": bool(a.autorename)}
        return files.RelocationBatchV2Launch.async_job_id(await svc.batches.launch_job(call.caller, kind, request))

    return launch


def _check(kind: str, in_progress: Any, entries_json: EntriesJson) -> Callable[[Services, Call], Any]:
    async def check(svc: Services, call: Call) -> Any:
        outcomes = await svc.batches.check(call.caller, call.arg.async_job_id, kind)
        return in_progress if outcomes is None else _complete(entries_json(outcomes))

    return check


async def list_revisions(svc: Services, call: Call) -> Any:
    a = call.arg
    found = await svc.tree.list_revisions(call.caller, a.path, by_id=a.mode.is_id(), limit=a.limit,
                                          before_rev=a.before_rev)
    return files.ListRevisionsResult(
        is_deleted=found.is_deleted, entries=[file_metadata(e) for e in found.entries], has_more=found.has_more,
        server_deleted=timestamp(found.server_deleted) if found.server_deleted is not None else None,
    )


async def restore(svc: Services, call: Call) -> Any:
    return file_metadata(await svc.tree.restore(call.caller, call.arg.path, call.arg.rev))


HANDLERS = {
    "files/create_folder_v2": create_folder_v2,
    "files/create_folder_batch": create_folder_batch,
    "files/create_folder_batch/check": _check(
        CREATE_FOLDER_BATCH, files.CreateFolderBatchJobStatus.in_progress, create_folder_entries_json),
    "files/delete_v2": delete_v2,
    "files/delete_batch": delete_batch,
    "files/delete_batch/check": _check(DELETE_BATCH, files.DeleteBatchJobStatus.in_progress, delete_entries_json),
    "files/move_v2": move_v2,
    "files/copy_v2": copy_v2,
    "files/move_batch_v2": _relocation_batch(MOVE_BATCH),
    "files/copy_batch_v2": _relocation_batch(COPY_BATCH),
    "files/move_batch/check_v2": _check(
        MOVE_BATCH, files.RelocationBatchV2JobStatus.in_progress, relocation_entries_json),
    "files/copy_batch/check_v2": _check(
        COPY_BATCH, files.RelocationBatchV2JobStatus.in_progress, relocation_entries_json),
    "files/list_revisions": list_revisions,
    "files/restore": restore,
}
