"""files/upload_session/* and files/upload: wire arguments <-> UploadSessionService / BatchService."""

from __future__ import annotations

import json
from calendar import timegm
from typing import Any

from localbox.api.context import Call, Services
from localbox.api.convert import batch_entries_json, file_metadata
from localbox.api.responses import json_ok
from localbox.domain.errors import CallError, DomainError, SessionLookupError
from localbox.domain.models import SessionType
from localbox.services.files import CommitSpec
from localbox.services.upload_sessions import FinishEntry
from localbox.spec import files


def commit_spec(info: Any) -> CommitSpec:
    mode = info.mode
    cm = info.client_modified
    return CommitSpec(
        path=info.path,
        mode="overwrite" if mode.is_overwrite() else "update" if mode.is_update() else "add",
        rev=mode.get_update() if mode.is_update() else None,
        autorename=bool(info.autorename), strict_conflict=bool(info.strict_conflict),
        client_modified=float(timegm(cm.utctimetuple())) if cm is not None else None,
        property_templates=tuple(g.template_id for g in info.property_groups or ()),
    )


def _session_type(arg: Any) -> SessionType:
    st = arg.session_type
    return SessionType.CONCURRENT if st is not None and st.is_concurrent() else SessionType.SEQUENTIAL


async def start(svc: Services, call: Call) -> Any:
    a = call.arg
    try:
        session_id = await svc.sessions.start(
            call.caller, close=bool(a.close), session_type=_session_type(a), content_hash=a.content_hash,
            body=call.body)
    except SessionLookupError as e:
        if e.tags == ("too_large",):
            raise CallError("payload_too_large") from None
        raise
    return files.UploadSessionStartResult(session_id=session_id)


async def start_batch(svc: Services, call: Call) -> Any:
    ids = await svc.sessions.start_batch(call.caller, session_type=_session_type(call.arg),
                                         count=call.arg.num_sessions)
    return files.UploadSessionStartBatchResult(session_ids=ids)


async def append_v2(svc: Services, call: Call) -> Any:
    a = call.arg
    await svc.sessions.append(call.caller, a.cursor.session_id, a.cursor.offset, close=bool(a.close),
                              content_hash=a.content_hash, body=call.body)
    return None


async def append_v1(svc: Services, call: Call) -> Any:
    # v1 takes a bare cursor and never closes.
    await svc.sessions.append(call.caller, call.arg.session_id, call.arg.offset, close=False,
                              content_hash=None, body=call.body)
    return None


async def append_batch(svc: Services, call: Call) -> Any:
    a = call.arg
    items = [(e.cursor.session_id, e.cursor.offset, e.length, bool(e.close)) for e in a.entries]
    outcomes = await svc.sessions.append_batch(call.caller, items, content_hash=a.content_hash, body=call.body)
    entries = []
    for outcome in outcomes:
        if outcome is None:
            entries.append(files.UploadSessionAppendBatchResultEntry.success)
        else:
            err = files.UploadSessionAppendBatchEntryError(outcome.tags[0], _lookup_value(outcome))
            entries.append(files.UploadSessionAppendBatchResultEntry.failure(err))
    return files.UploadSessionAppendBatchResult(entries=entries)


def _lookup_value(err: DomainError) -> Any:
    if err.tags == ("incorrect_offset",):
        return files.UploadSessionOffsetError(correct_offset=err.payload["correct_offset"])
    return None


async def finish(svc: Services, call: Call) -> Any:
    a = call.arg
    entry = await svc.sessions.finish(call.caller, a.cursor.session_id, a.cursor.offset, commit_spec(a.commit),
                                      content_hash=a.content_hash, body=call.body)
    return file_metadata(entry)


async def upload(svc: Services, call: Call) -> Any:
    entry = await svc.sessions.upload(call.caller, commit_spec(call.arg), content_hash=call.arg.content_hash,
                                      body=call.body)
    return file_metadata(entry)


def _entries(arg: Any) -> list[FinishEntry]:
    return [FinishEntry(e.cursor.session_id, e.cursor.offset, commit_spec(e.commit)) for e in arg.entries]




async def finish_batch(svc: Services, call: Call) -> Any:
    job_id = await svc.batches.launch(call.caller, _entries(call.arg))
    return files.UploadSessionFinishBatchLaunch.async_job_id(job_id)


async def finish_batch_check(svc: Services, call: Call) -> Any:
    outcomes = await svc.batches.check(call.caller, call.arg.async_job_id)
    if outcomes is None:
        return files.UploadSessionFinishBatchJobStatus.in_progress
    return json_ok(json.dumps({".tag": "complete", "entries": batch_entries_json(outcomes)}))


async def finish_batch_v2(svc: Services, call: Call) -> Any:
    outcomes = await svc.batches.commit_now(call.caller, _entries(call.arg))
    return json_ok(json.dumps({"entries": batch_entries_json(outcomes)}))


HANDLERS = {
    "files/upload_session/start": start,
    "files/upload_session/start_batch": start_batch,
    "files/upload_session/append": append_v1,
    "files/upload_session/append_v2": append_v2,
    "files/upload_session/append_batch": append_batch,
    "files/upload_session/finish": finish,
    "files/upload_session/finish_batch": finish_batch,
    "files/upload_session/finish_batch/check": finish_batch_check,
    "files/upload_session/finish_batch_v2": finish_batch_v2,
    "files/upload": upload,
}

