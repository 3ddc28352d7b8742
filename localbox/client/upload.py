"""`localbox upload`: many files at once through upload sessions, committed by finish_batch.

Pipeline: up to `parallel` HTTP transfers run at a time.  A file no larger than one part travels in a
single call (upload_session/start with close=true); a larger one goes through a concurrent session whose
4 MiB-aligned parts are appended in parallel, the last part closing it (or, with `sequential`, through a
sequential session that resumes from `correct_offset`).  Uploaded sessions queue for one committer, which
sends at most `batch_size` entries per finish_batch and polls finish_batch/check: one batch at a time,
as Dropbox asks of each account.  Entries that fail with too_many_write_operations go back to the
queue; a batch whose fate is unknown (a lost answer, a job that failed) is settled entry by entry by
comparing the remote content hash with the local one.

`resume`: files already in the remote folder with the same size and content hash are not sent again.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localbox.client.http import ApiError, DropboxHttp, tag_path
from localbox.client.progress import Reporter, Summary, accounted_run
from localbox.domain.content_hash import BLOCK_SIZE, ContentHasher, content_hash

MAX_BATCH = 1000  # finish_batch's limit
MAX_PART = 148 * 1024 * 1024  # below Dropbox's 150 MiB request body limit, 4 MiB-aligned
_ENTRY_ATTEMPTS = 8  # commits of one file before it is reported as failed


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: Path
    remote: str
    size: int
    mtime: float


@dataclass(slots=True)
class Uploaded:
    """A closed session waiting for its commit."""

    file: LocalFile
    session_id: str
    attempts: int = 0


def remote_folder(text: str) -> str:
    """`/`, `` -> `` (the root); `/a/b/` -> `/a/b`."""
    folder = text.strip().rstrip("/")
    if folder and not folder.startswith("/"):
        raise ValueError(f"the remote folder must start with '/': {text!r}")
    return folder


def scan(local: Path, folder: str) -> list[LocalFile]:
    """A file lands in the folder under its own name; a directory's contents land in the folder
    (like `rclone copy`), sub-directories included.  Symbolic links to files are followed."""
    if local.is_file():
        st = local.stat()
        return [LocalFile(local, f"{folder}/{local.name}", st.st_size, st.st_mtime)]
    if not local.is_dir():
        raise FileNotFoundError(f"no such file or directory: {local}")
    found: list[LocalFile] = []
    for root, dirs, names in os.walk(local):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            try:
                st = path.stat()
            except OSError:
                continue  # a dangling link
            if not path.is_file():
                continue
            rel = path.relative_to(local).as_posix()
            found.append(LocalFile(path, f"{folder}/{rel}", st.st_size, st.st_mtime))
    return found


def read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise OSError(f"{path} changed size while being uploaded")
    return data


def file_hash(path: Path) -> str:
    hasher = ContentHasher()
    with path.open("rb") as f:
        while chunk := f.read(BLOCK_SIZE):
            hasher.update(chunk)
    return hasher.hexdigest()


def dropbox_time(seconds: float) -> str:
    """Dropbox timestamps have whole seconds, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


async def remote_files(http: DropboxHttp, folder: str) -> dict[str, dict[str, Any]]:
    """Every file below `folder` by path_lower (empty when the folder does not exist)."""
    found: dict[str, dict[str, Any]] = {}
    try:
        page = await http.rpc("files/list_folder", {"path": folder, "recursive": True, "limit": 2000})
    except ApiError as e:
        if e.tag.startswith("path/not_found"):
            return found
        raise
    while True:
        for entry in page["entries"]:
            if entry.get(".tag") == "file":
                found[entry["path_lower"]] = entry
        if not page.get("has_more"):
            return found
        page = await http.rpc("files/list_folder/continue", {"cursor": page["cursor"]})


class Uploader:
    def __init__(self, http: DropboxHttp, reporter: Reporter, *, parallel: int = 8,
                 part_size: int = 8 * 1024 * 1024, batch_size: int = MAX_BATCH, batch_api: str = "v1",
                 sequential: bool = False, resume: bool = False, linger: float = 0.5,
                 job_timeout: float = 900.0) -> None:
        if part_size <= 0 or part_size % BLOCK_SIZE or part_size > MAX_PART:
            raise ValueError("the part size is a multiple of 4 MiB, at most 148 MiB")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError("the batch size is 1 to 1000")
        self.http = http
        self.reporter = reporter
        self.parallel = max(1, parallel)
        self.part_size = part_size
        self.batch_size = batch_size
        self.batch_api = batch_api
        self.sequential = sequential
        self.resume = resume
        self.linger = linger
        self.job_timeout = job_timeout
        self.summary = Summary("uploaded")
        self._ready: list[Uploaded] = []
        self._arrived = asyncio.Event()
        self._uploading = 0

    # -- the run ----------------------------------------------------------------------------
    async def run(self, local: Path, folder: str) -> Summary:
        async with accounted_run(self.summary, self.reporter, self.http.retries.reasons) as tasks:
            files = await asyncio.to_thread(scan, local, remote_folder(folder))
            if self.resume:
                files = await self._changed_only(files, remote_folder(folder))
            self.reporter.start(len(files), sum(f.size for f in files))
            self._uploading = len(files)
            committer = asyncio.create_task(self._commit_loop())
            tasks.add(committer)
            slots = asyncio.Semaphore(self.parallel)  # HTTP transfers in flight
            gate = asyncio.Semaphore(self.parallel * 2)  # files in flight (bounds memory and tasks)
            for f in files:
                await gate.acquire()
                task = asyncio.create_task(self._one(f, slots, gate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)  # a long run keeps only the files in flight
            await asyncio.gather(*list(tasks))
        return self.summary

    async def _changed_only(self, files: list[LocalFile], folder: str) -> list[LocalFile]:
        remote = await remote_files(self.http, folder)
        same_size = [f for f in files if remote.get(f.remote.lower(), {}).get("size") == f.size]
        hashes = await asyncio.gather(*(asyncio.to_thread(file_hash, f.path) for f in same_size))
        unchanged = {f.remote for f, h in zip(same_size, hashes, strict=True)
                     if remote[f.remote.lower()].get("content_hash") == h}
        self.summary.skipped = len(unchanged)
        return [f for f in files if f.remote not in unchanged]

    async def _one(self, f: LocalFile, slots: asyncio.Semaphore, gate: asyncio.Semaphore) -> None:
        try:
            session_id = await self._upload(f, slots)
            self._ready.append(Uploaded(f, session_id))
        except ApiError as e:
            self.summary.failures[f.remote] = e.tag
        except OSError as e:
            self.summary.failures[f.remote] = f"local_error: {e}"
        finally:
            self._uploading -= 1
            self._arrived.set()
            gate.release()

    # -- bytes ------------------------------------------------------------------------------
    async def _upload(self, f: LocalFile, slots: asyncio.Semaphore) -> str:
        if f.size <= self.part_size:
            async with slots:
                data = await asyncio.to_thread(read_range, f.path, 0, f.size)
                answer = await self.http.upload("files/upload_session/start",
                                                {"close": True, "content_hash": content_hash(data)}, data)
            self.reporter.advance(f.size)
            return str(answer["session_id"])
        if self.sequential:
            return await self._sequential(f, slots)
        return await self._concurrent(f, slots)

    async def _concurrent(self, f: LocalFile, slots: asyncio.Semaphore) -> str:
        answer = await self.http.upload("files/upload_session/start", {"session_type": "concurrent"}, b"")
        session_id = str(answer["session_id"])
        parts = [(o, min(self.part_size, f.size - o)) for o in range(0, f.size, self.part_size)]

        async def put(offset: int, length: int, close: bool) -> None:
            async with slots:
                data = await asyncio.to_thread(read_range, f.path, offset, length)
                arg = {"cursor": {"session_id": session_id, "offset": offset}, "close": close,
                       "content_hash": content_hash(data)}
                try:
                    await self.http.upload("files/upload_session/append_v2", arg, data)
                except ApiError as e:
                    # The closing part was applied but its answer was lost: a retry finds the session closed.
                    if not (close and e.tag == "closed"):
                        raise
            self.reporter.advance(length)

        async with asyncio.TaskGroup() as group:
            for offset, length in parts[:-1]:
                group.create_task(put(offset, length, False))
        # Closed last: a concurrent session is complete once its closing part arrives.
        await put(*parts[-1], True)
        return session_id

    async def _sequential(self, f: LocalFile, slots: asyncio.Semaphore) -> str:
        session_id: str | None = None
        offset = 0
        while session_id is None or offset < f.size:
            length = min(self.part_size, f.size - offset)
            close = offset + length >= f.size
            async with slots:
                data = await asyncio.to_thread(read_range, f.path, offset, length)
                arg: dict[str, Any] = {"close": close, "content_hash": content_hash(data)}
                if session_id is None:
                    session_id = str((await self.http.upload("files/upload_session/start", arg, data))["session_id"])
                else:
                    try:
                        await self.http.upload("files/upload_session/append_v2",
                                               {**arg, "cursor": {"session_id": session_id, "offset": offset}}, data)
                    except ApiError as e:
                        correct = e.find("correct_offset")
                        if e.tag.endswith("incorrect_offset") and isinstance(correct, int) and 0 <= correct <= f.size:
                            # An earlier answer was lost (or bytes went missing): go on from where the
                            # server is.
                            self.http.retries.add("incorrect_offset")
                            self.reporter.advance(correct - offset)
                            offset = correct
                            continue
                        if not (close and e.tag == "closed"):
                            raise
            self.reporter.advance(length)
            offset += length
        return session_id

    # -- commits ----------------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            deadline: float | None = None
            while len(self._ready) < self.batch_size and self._uploading > 0:
                self._arrived.clear()
                if self._ready and deadline is None:
                    deadline = time.monotonic() + self.linger
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(self._arrived.wait(), timeout)
                except TimeoutError:
                    break
            if not self._ready:
                if self._uploading == 0:
                    return
                continue
            batch, self._ready = self._ready[: self.batch_size], self._ready[self.batch_size :]
            await self._commit(batch)

    async def _commit(self, batch: list[Uploaded]) -> None:
        entries = [{"cursor": {"session_id": u.session_id, "offset": u.file.size},
                    "commit": {"path": u.file.remote, "mode": "overwrite", "autorename": False, "mute": True,
                               "client_modified": dropbox_time(u.file.mtime)}} for u in batch]
        results: list[dict[str, Any]] | None
        try:
            results = await self._finish(entries)
        except ApiError as e:
            if e.tag in ("internal_error", "connection_failed", "job_timeout") or (e.status or 0) >= 500:
                results = None  # unknown: some entries may have been committed
            else:
                for u in batch:
                    self.summary.failures[u.file.remote] = e.tag
                return
        self.summary.batches += 1
        if results is None or len(results) != len(batch):
            await self._settle(batch, "internal_error")
            return
        retry: list[Uploaded] = []
        unsure: list[Uploaded] = []
        for u, result in zip(batch, results, strict=True):
            if result.get(".tag") == "success":
                self._committed(u)
                continue
            tag = tag_path(result.get("failure"))
            if tag.endswith("too_many_write_operations"):
                self.http.retries.add("entry_too_many_write_operations")
                retry.append(u)
            elif tag.startswith("lookup_failed/not_found") or tag.startswith("lookup_failed/closed"):
                unsure.append(u)  # a repeated batch whose first copy committed the session
            else:
                self.summary.failures[u.file.remote] = tag
        if unsure:
            await self._settle(unsure, "lookup_failed/not_found", requeue=False)
        self._requeue(retry, "too_many_write_operations")
        if retry:
            await asyncio.sleep(min(0.2 * 2 ** max(u.attempts for u in retry), 10.0))

    async def _finish(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.batch_api == "v2":
            answer = await self.http.rpc("files/upload_session/finish_batch_v2", {"entries": entries})
            return list(answer["entries"])
        launched = await self.http.rpc("files/upload_session/finish_batch", {"entries": entries})
        if launched.get(".tag") == "complete":
            return list(launched["entries"])
        job = {"async_job_id": launched["async_job_id"]}
        interval = 0.05
        deadline = time.monotonic() + self.job_timeout
        while time.monotonic() < deadline:
            answer = await self.http.rpc("files/upload_session/finish_batch/check", job)
            if answer.get(".tag") == "complete":
                return list(answer["entries"])
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 2.0)
        raise ApiError("files/upload_session/finish_batch/check", None, "job_timeout")

    async def _settle(self, batch: list[Uploaded], tag: str, requeue: bool = True) -> None:
        """Entries whose commit is in doubt: done if the remote file has the local content hash,
        otherwise sent again (their sessions were not used) or reported."""
        again: list[Uploaded] = []
        for u in batch:
            try:
                meta = await self.http.rpc("files/get_metadata", {"path": u.file.remote})
                local = await asyncio.to_thread(file_hash, u.file.path)
            except (ApiError, OSError):
                meta, local = None, None
            if meta is not None and meta.get("content_hash") == local:
                self._committed(u)
            elif requeue:
                again.append(u)
            else:
                self.summary.failures[u.file.remote] = tag
        self._requeue(again, tag)

    def _requeue(self, items: list[Uploaded], tag: str) -> None:
        for u in items:
            u.attempts += 1
            if u.attempts >= _ENTRY_ATTEMPTS:
                self.summary.failures[u.file.remote] = tag
            else:
                self._ready.append(u)

    def _committed(self, u: Uploaded) -> None:
        self.summary.files += 1
        self.summary.bytes += u.file.size
        self.summary.failures.pop(u.file.remote, None)
        self.reporter.file_done()

