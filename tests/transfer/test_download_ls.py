"""`localbox download` and `localbox ls`, and the host handling that lets the client talk to real Dropbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from transfer_helpers import localbox, make_tree

from localbox.client.http import DropboxHttp, Endpoints, tag_path
from localbox.testing import LocalboxServer

MiB = 1024 * 1024


def test_download_tree_then_resume(box: LocalboxServer, tmp_path: Path) -> None:
    content = make_tree(tmp_path / "src", 40, big=(6 * MiB,))
    assert localbox(box, "upload", str(tmp_path / "src"), "/photos", "--quiet").code == 0
    run = localbox(box, "download", "/photos", str(tmp_path / "out"), "--json")
    assert run.code == 0, run.stderr
    assert run.summary["files"] == 41 and run.summary["bytes"] == sum(map(len, content.values()))
    for rel, data in content.items():
        assert (tmp_path / "out" / rel).read_bytes() == data
    assert not list((tmp_path / "out").rglob(".*.localbox-part"))

    (tmp_path / "out" / "d0" / "sub0" / "f00000.txt").write_bytes(b"changed locally")
    again = localbox(box, "download", "/photos", str(tmp_path / "out"), "--resume", "--json")
    assert (again.summary["skipped"], again.summary["files"]) == (40, 1)
    assert (tmp_path / "out" / "d0" / "sub0" / "f00000.txt").read_bytes() == content["d0/sub0/f00000.txt"]


def test_download_single_file_and_missing_path(box: LocalboxServer, tmp_path: Path) -> None:
    box.client().files_upload(b"hello", "/a/note.txt")
    (tmp_path / "dir").mkdir()
    assert localbox(box, "download", "/a/note.txt", str(tmp_path / "dir"), "--quiet").code == 0
    assert (tmp_path / "dir" / "note.txt").read_bytes() == b"hello"
    assert localbox(box, "download", "/a/note.txt", str(tmp_path / "x.txt"), "--quiet").code == 0
    assert (tmp_path / "x.txt").read_bytes() == b"hello"
    missing = localbox(box, "download", "/nope", str(tmp_path / "y"))
    assert missing.code == 2 and "path/not_found" in missing.stderr


def test_download_survives_dropped_responses(box: LocalboxServer, tmp_path: Path) -> None:
    content = make_tree(tmp_path / "src", 10)
    assert localbox(box, "upload", str(tmp_path / "src"), "/dl", "--quiet").code == 0
    box.add_fault("drop_response", route="files/download", times=3)
    run = localbox(box, "download", "/dl", str(tmp_path / "out"), "--json")
    assert run.code == 0 and run.summary["retries"] == {"connection": 3}
    assert all((tmp_path / "out" / rel).read_bytes() == data for rel, data in content.items())


def test_ls(box: LocalboxServer, tmp_path: Path) -> None:
    dbx = box.client()
    dbx.files_upload(b"12345", "/Music/Song.mp3")
    dbx.files_create_folder_v2("/Music/Live")
    plain = localbox(box, "ls", "/Music")
    assert plain.code == 0 and plain.stdout.splitlines() == ["Live/", "Song.mp3"]
    long = localbox(box, "ls", "/music", "-l").stdout.splitlines()
    assert long[1].split()[:2] == ["file", "5"] and long[1].endswith("Song.mp3")
    rec = [json.loads(line) for line in localbox(box, "ls", "/", "-r", "--json").stdout.splitlines()]
    assert [(e[".tag"], e["path_display"]) for e in rec] == [
        ("folder", "/Music"), ("folder", "/Music/Live"), ("file", "/Music/Song.mp3")]
    assert localbox(box, "ls", "/Music/Song.mp3").stdout.strip() == "Song.mp3"


def test_help_of_every_client_command() -> None:
    import subprocess
    import sys

    for command in ("upload", "download", "ls"):
        out = subprocess.run([sys.executable, "-m", "localbox", command, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "--url" in out.stdout and "--token" in out.stdout


# -- the wire, without a server -------------------------------------------------------------------------
def test_real_dropbox_splits_rpc_and_content_hosts() -> None:
    assert Endpoints.from_url("https://api.dropboxapi.com") == Endpoints(
        "https://api.dropboxapi.com", "https://content.dropboxapi.com")
    assert Endpoints.from_url("https://api.dropboxapi.com/2/") == Endpoints.from_url("https://content.dropboxapi.com")
    assert Endpoints.from_url("http://127.0.0.1:8080/") == Endpoints("http://127.0.0.1:8080", "http://127.0.0.1:8080")
    assert Endpoints.from_url("localhost:9") == Endpoints("http://localhost:9", "http://localhost:9")

    seen: list[tuple[str, str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.url.path, dict(request.headers)))
        if request.url.path == "/2/files/download":
            return httpx.Response(200, content=b"x", headers={"Dropbox-API-Result": '{"name": "x"}'})
        return httpx.Response(200, json={"ok": True})

    async def calls() -> None:
        http = DropboxHttp("https://api.dropboxapi.com", "T")
        http.client = httpx.AsyncClient(transport=httpx.MockTransport(handler), headers=http.client.headers)
        await http.rpc("files/list_folder", {"path": ""})
        await http.upload("files/upload_session/start", {"close": True, "path": "/é"}, b"data")
        async with http.download("files/download", {"path": "/x"}) as (result, response):
            assert result == {"name": "x"} and await response.aread() == b"x"
        await http.aclose()

    asyncio.run(calls())
    assert [(h, p) for h, p, _ in seen] == [("api.dropboxapi.com", "/2/files/list_folder"),
                                            ("content.dropboxapi.com", "/2/files/upload_session/start"),
                                            ("content.dropboxapi.com", "/2/files/download")]
    assert seen[1][2]["dropbox-api-arg"] == '{"close":true,"path":"/\\u00e9"}'  # ASCII-only header
    assert all(h["authorization"] == "Bearer T" for _, _, h in seen)


def test_tag_paths() -> None:
    conflict = {".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}}
    assert tag_path(conflict) == "path/conflict/file"
    assert tag_path({".tag": "incorrect_offset", "correct_offset": 5}) == "incorrect_offset"
    assert tag_path(None) == "unknown"


def test_retry_after_is_honoured() -> None:
    attempts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(asyncio.get_event_loop().time())
        if len(attempts) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, text="slow down")
        return httpx.Response(200, json={})

    async def call() -> None:
        http = DropboxHttp("http://x", "T")
        http.client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        await http.rpc("users/get_current_account")
        assert dict(http.retries.reasons) == {"too_many_requests": 1}

    asyncio.run(call())
    assert attempts[1] - attempts[0] >= 0.95
