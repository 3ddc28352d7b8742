"""`localbox upload`: trees through upload sessions and finish_batch, progress modes, failures by tag,
an interrupted and resumed run, and the retries that #6's faults call for."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from transfer_helpers import localbox, make_tree, routes

from localbox.domain.content_hash import content_hash
from localbox.testing import LocalboxServer

MiB = 1024 * 1024


def remote_tree(box: LocalboxServer, folder: str) -> dict[str, Any]:
    """path_display relative to `folder` -> FileMetadata, through the official SDK."""
    dbx = box.client()
    page = dbx.files_list_folder(folder, recursive=True)
    entries = list(page.entries)
    while page.has_more:
        page = dbx.files_list_folder_continue(page.cursor)
        entries.extend(page.entries)
    return {e.path_display[len(folder) + 1:]: e for e in entries if hasattr(e, "content_hash")}


def assert_landed(box: LocalboxServer, folder: str, content: dict[str, bytes]) -> None:
    remote = remote_tree(box, folder)
    assert sorted(remote) == sorted(content)
    for rel, data in content.items():
        assert remote[rel].size == len(data), rel
        assert remote[rel].content_hash == content_hash(data), rel


def test_tree_lands_through_sessions_and_finish_batch(box: LocalboxServer, tmp_path: Path) -> None:
    content = make_tree(tmp_path / "src", 150, big=(9 * MiB + 123, 4 * MiB))
    run = localbox(box, "upload", str(tmp_path / "src"), "/dest", "--part-size", "4MiB", "--batch-size", "60",
                   "--json")
    assert run.code == 0, run.stderr
    summary = run.summary
    assert (summary["files"], summary["failures"], summary["interrupted"]) == (152, [], False)
    assert summary["bytes"] == sum(len(d) for d in content.values())
    assert_landed(box, "/dest", content)

    calls = collections.Counter(routes(box))
    # Small files: one start (closed, with data) each.  The 9 MiB file: a concurrent session (start
    # without data) and three 4 MiB-aligned parts; the 4 MiB file fits in one part.
    assert calls["files/upload_session/start"] == 152
    assert calls["files/upload_session/append_v2"] == 3
    assert calls["files/upload"] == 0 and calls["files/upload_session/finish"] == 0
    assert calls["files/upload_session/finish_batch"] == summary["batches"] >= 3  # 152 entries, <= 60 each
    assert calls["files/upload_session/finish_batch/check"] >= summary["batches"]


def test_batches_go_one_at_a_time(box: LocalboxServer, tmp_path: Path) -> None:
    """A batch is launched only after the previous one completed (finish_batch/check said complete)."""
    make_tree(tmp_path / "src", 90)
    box.add_fault("job_stuck", seconds=0.3)  # every job takes a while: overlapping batches would show
    run = localbox(box, "upload", str(tmp_path / "src"), "/one", "--batch-size", "20", "--json")
    assert run.code == 0, run.stderr
    log = [r for r in box.requests() if "finish_batch" in r["route"]]
    open_jobs = 0
    for r in log:
        if r["route"].endswith("finish_batch"):
            assert open_jobs == 0, "a batch was launched while another was in flight"
            open_jobs = 1
        elif r["route"].endswith("check") and r["status"] == 200:
            open_jobs = 0  # (in_progress answers keep it open until the last check)
    assert run.summary["batches"] >= 5


def test_single_file_and_batch_api_v2(box: LocalboxServer, tmp_path: Path) -> None:
    one = tmp_path / "report.pdf"
    one.write_bytes(b"%PDF" * 1000)
    run = localbox(box, "upload", str(one), "/docs", "--batch-api", "v2", "--quiet")
    assert (run.code, run.stdout, run.stderr) == (0, "", "")
    assert remote_tree(box, "/docs")["report.pdf"].content_hash == content_hash(one.read_bytes())
    assert "files/upload_session/finish_batch_v2" in routes(box)


def test_human_summary_and_progress(box: LocalboxServer, tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 12)
    run = localbox(box, "upload", str(tmp_path / "src"), "/human")
    assert run.code == 0, run.stderr
    assert run.stdout.startswith("uploaded: 12 files, ") and "MB/s" in run.stdout
    assert "12/12 files" in run.stderr  # the files bar (rich, on stderr)


def test_failures_are_reported_with_their_dropbox_tags(box: LocalboxServer, tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 5)
    box.client().files_create_folder_v2("/clash/d0/sub0/f00000.txt")  # a folder where a file should go
    run = localbox(box, "upload", str(tmp_path / "src"), "/clash", "--json")
    assert run.code == 1
    assert run.summary["failures"] == [{"path": "/clash/d0/sub0/f00000.txt", "error": "path/conflict/folder"}]
    assert run.summary["files"] == 4
    text = localbox(box, "upload", str(tmp_path / "src"), "/clash", "--quiet")
    assert text.code == 1 and "/clash/d0/sub0/f00000.txt: path/conflict/folder" in text.stderr


def test_bad_token_and_bad_arguments(box: LocalboxServer, tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 1)
    run = localbox(box, "upload", str(tmp_path / "src"), "/x", "--token", "nope", "--json")
    assert run.code in (1, 2) and "invalid_access_token" in run.stdout + run.stderr
    assert localbox(box, "upload", str(tmp_path / "src"), "/x", "--part-size", "5MiB").code == 2
    assert localbox(box, "upload", str(tmp_path / "missing"), "/x").code == 2


def test_interrupted_upload_resumes_without_resending_committed_files(box: LocalboxServer, tmp_path: Path) -> None:
    content = make_tree(tmp_path / "src", 400)
    box.add_fault("latency", route="files/upload_session/start", seconds=0.01)
    env_args = [sys.executable, "-m", "localbox", "upload", str(tmp_path / "src"), "/resumed", "--url", box.url,
                "--token", box.token, "--batch-size", "25", "--parallel", "2", "--quiet"]
    proc = subprocess.Popen(env_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for a few committed batches, then pull the plug
        checks = [r for r in box.requests(limit=10000) if r["route"].endswith("finish_batch/check")]
        if len({r["seq"] for r in checks}) >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    committed_before = len(remote_tree(box, "/resumed"))
    assert 0 < committed_before < 400

    box.clear_faults()
    mark = box.requests(limit=10000)[-1]["seq"]
    run = localbox(box, "upload", str(tmp_path / "src"), "/resumed", "--resume", "--json")
    assert run.code == 0, run.stderr
    assert run.summary["skipped"] == committed_before
    assert run.summary["files"] == 400 - committed_before
    # Only the missing files travelled again.
    assert collections.Counter(routes(box, since=mark))["files/upload_session/start"] == 400 - committed_before
    assert_landed(box, "/resumed", content)


def test_sigint_stops_cleanly_with_a_summary(box: LocalboxServer, tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 200)
    box.add_fault("latency", route="files/upload_session/start", seconds=0.05)
    proc = subprocess.Popen([sys.executable, "-m", "localbox", "upload", str(tmp_path / "src"), "/int",
                             "--url", box.url, "--token", box.token, "--json", "--parallel", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(box.requests()) < 10:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the upload did not stop after SIGINT: {err[-2000:]}") from None
    assert proc.returncode == 130, err
    assert '"interrupted": true' in out


# -- faults (#6) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fault", "params", "retry_reason"), [
    ({"kind": "entry_too_many_write_operations", "times": 5}, ["--batch-size", "10"],
     "entry_too_many_write_operations"),
    ({"kind": "too_many_write_operations", "route": "files/upload_session/start", "times": 3, "retry_after": 1},
     [], "too_many_write_operations"),
    ({"kind": "too_many_requests", "route": "files/upload_session/start", "times": 2, "retry_after": 1,
      "format": "text"}, [], "too_many_requests"),
    ({"kind": "server_error", "route": "files/upload_session/finish_batch/check", "times": 2, "status": 503}, [],
     "http_503"),
    ({"kind": "drop_response", "route": "files/upload_session/start", "times": 3}, [], "connection"),
    ({"kind": "drop_response", "route": "files/upload_session/append_v2", "times": 2}, [], "connection"),
    ({"kind": "partial_body", "route": "files/upload_session/append_v2", "times": 1, "fraction": 0.5},
     ["--sequential"], "incorrect_offset"),
    ({"kind": "drop_response", "route": "files/upload_session/append_v2", "times": 1}, ["--sequential"],
     "incorrect_offset"),
    ({"kind": "drop_response", "route": "files/upload_session/finish_batch", "times": 1}, [], "connection"),
    ({"kind": "job_internal_error", "times": 1, "committed": True}, [], None),
    ({"kind": "job_internal_error", "times": 1, "committed": False}, [], None),
    ({"kind": "expired_session", "route": "files/upload_session/finish_batch", "times": 1}, [], None),
])
def test_faults_are_retried_to_a_complete_upload(box: LocalboxServer, tmp_path: Path, fault: dict[str, Any],
                                                  params: list[str], retry_reason: str | None) -> None:
    content = make_tree(tmp_path / "src", 30, big=(10 * MiB,))
    kind = fault.pop("kind")
    rule_fields = {k: fault.pop(k) for k in ("route", "times") if k in fault}
    box.add_fault(kind, **rule_fields, **fault)
    run = localbox(box, "upload", str(tmp_path / "src"), "/f", "--part-size", "4MiB", "--json", *params)
    summary = run.summary
    if kind == "expired_session":
        # The sessions of the first batch are gone: those files are reported, nothing else is lost.
        assert run.code == 1
        assert summary["failures"] and {f["error"] for f in summary["failures"]} == {"lookup_failed/not_found"}
        assert summary["files"] + len(summary["failures"]) == 31
        return
    assert run.code == 0, (run.stdout, run.stderr)
    assert summary["failures"] == [] and summary["files"] == 31
    if retry_reason is not None:
        assert summary["retries"].get(retry_reason, 0) >= 1, summary["retries"]
    assert_landed(box, "/f", content)
    fired = [r for r in box.faults()]
    assert fired and all(r["fired"] >= 1 for r in fired), fired
