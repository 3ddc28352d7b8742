"""`localbox download` and `localbox ls`: the reverse direction, with upload's conventions.

A download is written to a temporary file next to its target, checked against the content hash in the
Dropbox-API-Result, then renamed into place: an interrupted run never leaves a truncated file under the
real name.  `resume` skips files that already exist locally with the same content hash.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from localbox.client.http import ApiError, DropboxHttp
from localbox.client.progress import Reporter, Summary, accounted_run
from localbox.client.upload import file_hash, remote_folder
from localbox.domain.content_hash import ContentHasher


def _seconds(stamp: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


async def list_entries(http: DropboxHttp, path: str, recursive: bool) -> list[dict[str, Any]]:
    page = await http.rpc("files/list_folder", {"path": path, "recursive": recursive, "limit": 2000})
    entries = list(page["entries"])
    while page.get("has_more"):
        page = await http.rpc("files/list_folder/continue", {"cursor": page["cursor"]})
        entries.extend(page["entries"])
    return entries


def _inside(root: Path, relative: str) -> Path:
    """The local path for a remote relative path; refuses names that would leave `root`."""
    parts = [p for p in relative.split("/") if p]
    if not parts or any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
        raise ValueError(f"refusing the remote name {relative!r}")
    return root.joinpath(*parts)


class Downloader:
    def __init__(self, http: DropboxHttp, reporter: Reporter, *, parallel: int = 8, resume: bool = False) -> None:
        self.http = http
        self.reporter = reporter
        self.parallel = max(1, parallel)
        self.resume = resume
        self.summary = Summary("downloaded")

    async def run(self, remote: str, local: Path) -> Summary:
        async with accounted_run(self.summary, self.reporter, self.http.retries.reasons) as tasks:
            plan = await self._plan(remote_folder(remote), local)
            if self.resume:
                plan = await self._changed_only(plan)
            self.reporter.start(len(plan), sum(int(e["size"]) for e, _ in plan))
            slots = asyncio.Semaphore(self.parallel)
            tasks.update(asyncio.create_task(self._one(entry, target, slots)) for entry, target in plan)
            await asyncio.gather(*tasks)
        return self.summary

    async def _plan(self, remote: str, local: Path) -> list[tuple[dict[str, Any], Path]]:
        meta: dict[str, Any] = {".tag": "folder", "path_lower": "", "path_display": ""}
        if remote:
            meta = await self.http.rpc("files/get_metadata", {"path": remote})
        if meta.get(".tag") == "file":
            target = local / meta["name"] if local.is_dir() else local
            return [(meta, target)]
        base = len(meta.get("path_display") or meta.get("path_lower") or "")
        plan: list[tuple[dict[str, Any], Path]] = []
        for entry in await list_entries(self.http, meta.get("path_lower") or "", recursive=True):
            if entry.get(".tag") != "file":
                continue
            try:
                plan.append((entry, _inside(local, entry["path_display"][base:])))
            except ValueError as e:
                self.summary.failures[entry.get("path_display", "?")] = f"local_error: {e}"
        return plan

    async def _changed_only(self, plan: list[tuple[dict[str, Any], Path]]) -> list[tuple[dict[str, Any], Path]]:
        async def same(entry: dict[str, Any], target: Path) -> bool:
            if not target.is_file() or target.stat().st_size != entry["size"]:
                return False
            return await asyncio.to_thread(file_hash, target) == entry.get("content_hash")

        flags = await asyncio.gather(*(same(e, t) for e, t in plan))
        self.summary.skipped = sum(flags)
        return [p for p, unchanged in zip(plan, flags, strict=True) if not unchanged]

    async def _one(self, entry: dict[str, Any], target: Path, slots: asyncio.Semaphore) -> None:
        name = entry.get("path_display") or entry["path_lower"]
        async with slots:
            try:
                await self._fetch(entry, target)
            except ApiError as e:
                self.summary.failures[name] = e.tag
                return
            except OSError as e:
                self.summary.failures[name] = f"local_error: {e}"
                return
        self.summary.files += 1
        self.summary.bytes += int(entry["size"])
        self.reporter.file_done()

    async def _fetch(self, entry: dict[str, Any], target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.localbox-part")
        hasher = ContentHasher()
        arg = {"path": entry.get("id") or entry["path_lower"]}
        if entry.get("rev"):
            arg = {"path": f"rev:{entry['rev']}"}
        try:
            async with self.http.download("files/download", arg) as (result, response):
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes(1024 * 1024):
                        out.write(chunk)
                        hasher.update(chunk)
                        self.reporter.advance(len(chunk))
            expected = (result or {}).get("content_hash")
            if expected is not None and hasher.hexdigest() != expected:
                raise ApiError("files/download", None, "content_hash_mismatch")
            modified = _seconds(str((result or {}).get("client_modified", "")))
            if modified is not None:
                os.utime(partial, (modified, modified))
            os.replace(partial, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()


async def ls(http: DropboxHttp, path: str, *, recursive: bool, long: bool, as_json: bool, out: TextIO) -> int:
    folder = remote_folder(path)
    try:
        entries = await list_entries(http, folder, recursive)
    except ApiError as error:
        if error.tag != "path/not_folder":
            raise
        entries = [await http.rpc("files/get_metadata", {"path": folder})]
    entries.sort(key=lambda item: str(item.get("path_lower", "")))
    for e in entries:
        if as_json:
            print(json.dumps(e), file=out)
            continue
        kind = e.get(".tag")
        shown = e.get("path_display") if recursive else e.get("name")
        shown = f"{shown}/" if kind == "folder" else shown
        if long:
            size = str(e.get("size", "-")) if kind == "file" else "-"
            print(f"{kind:<6} {size:>12}  {e.get('server_modified', '-'):<20}  {e.get('rev', '-'):<16}  "
                  f"{e.get('content_hash', '-')[:16] if kind == 'file' else '-':<16}  {shown}", file=out)
        else:
            print(shown, file=out)
    return len(entries)
