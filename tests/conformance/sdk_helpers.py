"""Helpers for the conformance tier: expected values computed locally, SDK call shortcuts, error decoding.

Nothing here talks to localbox except through the official SDK client passed in.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from dropbox import files
from dropbox.exceptions import ApiError
from dropbox.stone_base import Union

MiB = 1024 * 1024
BLOCK = 4 * MiB
MAX_REQUEST = 150 * MiB
EMPTY_HASH = hashlib.sha256(b"").hexdigest()


# -- expected values -----------------------------------------------------------------
def content_hash(data: bytes) -> str:
    """Dropbox content hash: sha256 over the concatenated sha256 digests of each 4 MiB block."""
    digests = b"".join(hashlib.sha256(data[i:i + BLOCK]).digest() for i in range(0, len(data), BLOCK))
    return hashlib.sha256(digests).hexdigest()


def blob(n: int, tag: str = "") -> bytes:
    """`n` random bytes (unique per call), optionally prefixed by a readable tag."""
    head = tag.encode()[:n]
    return head + os.urandom(n - len(head))


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


# -- error decoding --------------------------------------------------------------------
def tag_path(err: Any) -> str:
    """The union tag chain of a decoded route error, e.g. ``path/conflict/file``,
    ``lookup_failed/incorrect_offset`` (like Dropbox's error_summary, without the trailing dots)."""
    parts: list[str] = []
    cur = err
    while cur is not None:
        if isinstance(cur, Union):
            parts.append(cur._tag)
            cur = cur._value
        elif isinstance(cur, files.UploadWriteFailed):
            cur = cur.reason
        else:
            break
    return "/".join(parts)


def correct_offset(err: Any) -> int | None:
    """Walk a route error to the UploadSessionOffsetError payload, if any."""
    cur = err
    while cur is not None:
        if isinstance(cur, files.UploadSessionOffsetError):
            return int(cur.correct_offset)
        if isinstance(cur, Union):
            cur = cur._value
        else:
            return None
    return None


def api_error(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call fn, require an ApiError (HTTP 409-style route error) and return its decoded `.error`."""
    with pytest.raises(ApiError) as ei:
        fn(*args, **kwargs)
    return ei.value.error


# -- SDK shortcuts ---------------------------------------------------------------------
def commit(path: str, mode: files.WriteMode | None = None, autorename: bool = False,
           strict_conflict: bool = False) -> files.CommitInfo:
    return files.CommitInfo(path=path, mode=mode or files.WriteMode.add, autorename=autorename,
                            strict_conflict=strict_conflict)


def cursor(session_id: str, offset: int) -> files.UploadSessionCursor:
    return files.UploadSessionCursor(session_id=session_id, offset=offset)


def start_closed(dbx: Any, data: bytes) -> str:
    """A sequential session holding `data`, closed by the start call itself."""
    return str(dbx.files_upload_session_start(data, close=True).session_id)


def upload_chunked(dbx: Any, data: bytes, chunk: int, close: bool = True) -> str:
    """start + append_v2... (last one closes when `close`); returns the session id."""
    first = data[:chunk]
    rest = data[chunk:]
    sid = dbx.files_upload_session_start(first, close=close and not rest).session_id
    off = len(first)
    while rest:
        piece, rest = rest[:chunk], rest[chunk:]
        dbx.files_upload_session_append_v2(piece, cursor(sid, off), close=close and not rest)
        off += len(piece)
    return str(sid)


def finish_arg(session_id: str, size: int, path: str, **kw: Any) -> files.UploadSessionFinishArg:
    return files.UploadSessionFinishArg(cursor=cursor(session_id, size), commit=commit(path, **kw))


def wait_job(dbx: Any, job_id: str, timeout: float = 120.0) -> list[Any]:
    """Poll finish_batch/check until complete; returns the result entries."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        status = dbx.files_upload_session_finish_batch_check(job_id)
        if status.is_complete():
            return list(status.get_complete().entries)
        assert status.is_in_progress(), status
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still in progress after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def launch_batch(dbx: Any, entries: Sequence[files.UploadSessionFinishArg]) -> str:
    launch = dbx.files_upload_session_finish_batch(list(entries))
    assert launch.is_async_job_id(), f"finish_batch must always answer async_job_id, got {launch!r}"
    job_id = launch.get_async_job_id()
    assert isinstance(job_id, str) and job_id
    return job_id


def run_batch(dbx: Any, entries: Sequence[files.UploadSessionFinishArg], route: str = "v2",
              timeout: float = 120.0) -> list[Any]:
    """Commit a batch through finish_batch (v1: launch + poll) or finish_batch_v2; returns result entries."""
    if route == "v1":
        return wait_job(dbx, launch_batch(dbx, entries), timeout)
    assert route == "v2"
    return list(dbx.files_upload_session_finish_batch_v2(list(entries)).entries)


def success(entry: Any) -> files.FileMetadata:
    assert entry.is_success(), f"expected success, got failure {tag_path(entry.get_failure())}"
    md = entry.get_success()
    assert isinstance(md, files.FileMetadata)
    return md


def failure_tags(entry: Any) -> str:
    assert entry.is_failure(), f"expected failure, got success {entry.get_success()!r}"
    return tag_path(entry.get_failure())


def download(dbx: Any, path: str, **kw: Any) -> tuple[files.FileMetadata, bytes, Any]:
    md, resp = dbx.files_download(path, **kw)
    try:
        body = resp.content
    finally:
        resp.close()
    return md, body, resp


def list_all(dbx: Any, path: str, recursive: bool = False, limit: int | None = None) -> list[Any]:
    res = dbx.files_list_folder(path, recursive=recursive, limit=limit)
    entries = list(res.entries)
    pages = 1
    while res.has_more:
        res = dbx.files_list_folder_continue(res.cursor)
        entries.extend(res.entries)
        pages += 1
        assert pages < 10_000
    return entries


def assert_file(md: Any, path: str, data: bytes) -> None:
    """md describes the file at `path` (display casing) holding exactly `data`."""
    assert isinstance(md, files.FileMetadata), md
    assert md.name == basename(path)
    assert md.path_display == path
    assert md.path_lower == path.lower()
    assert md.size == len(data)
    assert md.content_hash == content_hash(data)
    assert md.id and md.id.startswith("id:")
    assert len(md.rev) >= 9


def files_only(entries: Iterable[Any]) -> list[files.FileMetadata]:
    return [e for e in entries if isinstance(e, files.FileMetadata)]
