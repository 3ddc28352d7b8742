"""A full disk: uploads fail with a retryable 503 (or Dropbox's insufficient_space), nothing committed
is damaged, the metadata stays consistent, and everything works again once space is freed.

The data dir lives on a small tmpfs that the test mounts (root only; skipped with the reason otherwise).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _apiwire import Api, content_hash, describe
from harness import running_server
from reliability_backends import Backend

pytestmark = pytest.mark.reliability
# A full local file system; the object store's counterpart is test_store_faults.py.
RELIABILITY_BACKENDS = ("embedded",)
MiB = 1024 * 1024
SIZE_MB = 48


@contextlib.contextmanager
def small_fs(where: Path) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _data(i: int, size: int) -> bytes:
    seed = hashlib.sha256(f"full-{i}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def _refused(r: httpx.Response) -> bool:
    """A full disk may only be answered with a retryable 503 or insufficient_space."""
    if r.status_code == 503:
        assert r.headers.get("retry-after"), describe(r)
        return True
    if r.status_code == 409 and "insufficient_space" in r.text:
        return True
    assert r.status_code == 200, describe(r)
    return False


def test_a_full_disk_refuses_uploads_and_keeps_what_was_committed(tmp_path: Path, backend: Backend) -> None:
    with small_fs(tmp_path / "mnt") as mnt, running_server(mnt / "data", backend.serve_args) as server, \
            httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        a = Api(http, server.new_account().token)
        kept = {f"/kept/{i}.bin": _data(i, (i + 1) * 700 * 1024) for i in range(4)}
        for path, d in kept.items():
            a.upload_ok(path, d)
        listing = a.rpc("files/list_folder", {"path": "", "recursive": True}).json()["entries"]

        # Fill the disk through the API: big uploads, sessions and small writes until refused.
        refused = 0
        for i in range(200):
            d = _data(100 + i, 5 * MiB + i)
            if i % 3 == 0:
                r = a.content("files/upload", {"path": f"/fill/{i}.bin"}, d)
            elif i % 3 == 1:
                r = a.content("files/upload_session/start", {"close": False}, d)
            else:
                r = a.rpc("files/create_folder_v2", {"path": f"/fill/dir-{i}"})
            refused += _refused(r)
            if refused >= 6:
                break
        assert refused >= 6, "the disk never filled up"
        # Fill whatever is left from outside, so metadata writes meet a full disk too.
        filler = mnt / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            while True:
                f.write(b"\0" * MiB)
        for i in range(5):
            _refused(a.content("files/upload", {"path": f"/full/{i}.bin"}, _data(300 + i, 100_000)))
            _refused(a.rpc("files/create_folder_v2", {"path": f"/full/dir-{i}"}))
            sid = a.content("files/upload_session/start", {}, b"x" * 5000)
            _refused(sid)

        # Nothing committed was damaged, and the metadata still answers consistently.
        for path, d in kept.items():
            assert a.download_bytes(path) == d
            assert a.metadata_ok(path)["content_hash"] == content_hash(d)
        now = a.rpc("files/list_folder", {"path": "", "recursive": True})
        assert now.status_code == 200, describe(now)
        by_path = {e["path_lower"]: e for e in now.json()["entries"]}
        for e in listing:
            assert by_path[e["path_lower"]] == e
        for e in by_path.values():
            if e[".tag"] == "file" and not e["path_lower"].startswith("/kept/"):
                assert len(a.download_bytes(e["path_lower"])) == e["size"]  # any file that got in is whole

        # Space freed: everything works again, without a restart.
        filler.unlink()
        for entry in ("/fill",):
            a.rpc("files/delete_v2", {"path": entry})
        server.cli("gc", "--gc-grace", "0s", "--revision-retention", "0s")
        again = _data(999, 3 * MiB + 1)
        assert a.upload_ok("/after/again.bin", again)["size"] == len(again)
        assert a.download_bytes("/after/again.bin") == again
        sid = a.start_ok(b"abc")
        assert a.finish_ok(sid, 3, "/after/session.bin")["size"] == 3
        log = server.log_path.read_text(errors="replace")
        errors = [line for line in log.splitlines() if " ERROR " in line]
        assert not errors, errors[:5]  # a 500 (or any unexpected failure) is logged as an ERROR
