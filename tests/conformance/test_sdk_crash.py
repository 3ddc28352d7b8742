"""kill -9 in the middle of uploads: every acknowledged append survives, nothing half-written shows.

Each round streams appends of distinct bytes into one session and records what was acknowledged;
the server is killed with SIGKILL at a random moment and restarted.  The session must then resume
exactly at the acknowledged offset (or one append later, when the last append was stored but its
answer was lost), and the committed file must be byte-for-byte the prefix that was sent.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import dropbox
import pytest
from dropbox import files
from harness import LocalServer, make_sdk

pytestmark = pytest.mark.conformance

CHUNK = 1024 * 1024 + 4321  # unaligned on purpose: tails cross block boundaries


def _payload(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest() * (CHUNK // 32) + b"x" * (CHUNK % 32)


# LOCALBOX_CRASH_ITERATIONS=200 for the long run (README, Reliability); CI runs 4.
@pytest.mark.parametrize("round_", range(int(os.environ.get("LOCALBOX_CRASH_ITERATIONS", "4"))))
def test_acknowledged_appends_survive_sigkill(tmp_path: Path, round_: int) -> None:
    rng = random.Random(round_)
    server = LocalServer(tmp_path / "data")
    server.start()
    try:
        token = server.new_account().token
        dbx = make_sdk(server, token)
        session_id = dbx.files_upload_session_start(b"").session_id
        acked = 0
        stop = threading.Event()

        def upload() -> None:
            nonlocal acked
            n = 0
            while not stop.is_set():
                try:
                    dbx.files_upload_session_append_v2(_payload(n), files.UploadSessionCursor(session_id, acked))
                except Exception:
                    return  # the server died under us
                acked += CHUNK
                n += 1

        t = threading.Thread(target=upload)
        t.start()
        time.sleep(rng.uniform(0.3, 1.2))
        server.stop(kill=True)
        stop.set()
        t.join(30)
        assert acked > 0, "no append was acknowledged before the kill; lengthen the run"

        server.start()
        dbx = make_sdk(server, token)
        sent = b"".join(_payload(i) for i in range(acked // CHUNK + 1))
        try:
            dbx.files_upload_session_append_v2(b"", files.UploadSessionCursor(session_id, acked), close=True)
            size = acked
        except dropbox.exceptions.ApiError as e:
            correct = e.error.get_incorrect_offset().correct_offset
            assert correct == acked + CHUNK, f"server resumed at {correct}, acknowledged {acked}"
            dbx.files_upload_session_append_v2(b"", files.UploadSessionCursor(session_id, correct), close=True)
            size = correct
        md = dbx.files_upload_session_finish(b"", files.UploadSessionCursor(session_id, size),
                                             files.CommitInfo(f"/crash/{round_}.bin"))
        _, resp = dbx.files_download(md.path_lower)
        assert len(resp.content) == size
        assert resp.content == sent[:size]
        assert md.content_hash == _content_hash(sent[:size])
        # No staging or temporary file is left that a listing or download could expose.
        assert [e.name for e in dbx.files_list_folder("/crash").entries] == [f"{round_}.bin"]
    finally:
        server.stop()
        os.sync()


def _content_hash(data: bytes) -> str:
    block = 4 * 1024 * 1024
    digests = b"".join(hashlib.sha256(data[i : i + block]).digest() for i in range(0, len(data), block))
    return hashlib.sha256(digests).hexdigest()
