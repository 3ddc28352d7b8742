"""/metrics, /healthz, /readyz and request ids in the logs (#9), against `localbox serve` over a socket."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from _apiwire import arg_header
from harness import LocalServer, running_server


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if m is None or m.group(1) != name:
            continue
        got = ",".join(sorted(p for p in re.findall(r'\w+="[^"]*"', m.group(2) or "")))
        if got == want:
            return float(m.group(3))
    return 0.0


def upload_start(http: httpx.Client, token: str, data: bytes, close: bool = True) -> str:
    r = http.post("/2/files/upload_session/start", content=data, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
        "Dropbox-API-Arg": arg_header({"close": close})})
    assert r.status_code == 200, r.text
    return str(r.json()["session_id"])


def finish_batch(http: httpx.Client, token: str, entries: list[tuple[str, int, str]]) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    r = http.post("/2/files/upload_session/finish_batch", headers=auth, json={"entries": [
        {"cursor": {"session_id": sid, "offset": size}, "commit": {"path": path}} for sid, size, path in entries]})
    job = r.json()["async_job_id"]
    for _ in range(200):
        r = http.post("/2/files/upload_session/finish_batch/check", headers=auth, json={"async_job_id": job})
        if r.json()[".tag"] == "complete":
            return
        time.sleep(0.02)
    raise AssertionError("the job did not complete")


def test_healthz_and_readyz(server: LocalServer, http: httpx.Client) -> None:
    r = http.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = http.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready", "metadata": "ok", "blobs": "ok"})


def test_readyz_says_which_store_does_not_answer(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as srv, httpx.Client(base_url=srv.url, trust_env=False) as http:
        assert http.get("/readyz").status_code == 200
        blobs, aside = tmp_path / "data" / "blobs", tmp_path / "blobs-aside"
        blobs.rename(aside)
        blobs.write_text("not a directory")  # the blob store can no longer write a block
        try:
            r = http.get("/readyz")
            assert r.status_code == 503
            assert r.json()["status"] == "not ready" and r.json()["metadata"] == "ok" and r.json()["blobs"] != "ok"
            assert http.get("/healthz").status_code == 200  # alive, just not ready
        finally:
            blobs.unlink()
            aside.rename(blobs)
        assert http.get("/readyz").status_code == 200


def test_metrics_count_calls_bytes_errors_sessions_and_jobs(server: LocalServer, http: httpx.Client) -> None:
    account = server.new_account()
    before = http.get("/metrics").text
    start = "files/upload_session/start"
    sid_a = upload_start(http, account.token, b"a" * 1000)
    sid_b = upload_start(http, account.token, b"b" * 500)
    upload_start(http, account.token, b"open", close=False)  # stays open
    finish_batch(http, account.token, [(sid_a, 1000, "/m/a.txt"), (sid_b, 500, "/m/b.txt")])
    missing = http.post("/2/files/get_metadata", headers={"Authorization": f"Bearer {account.token}"},
                        json={"path": "/nope"})
    assert missing.status_code == 409
    bad = http.post("/2/files/not_a_route", headers={"Authorization": f"Bearer {account.token}"}, json={})
    assert bad.status_code == 400

    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    after = r.text

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("localbox_requests_total", route=start, status="200") == 3
    assert grew("localbox_request_duration_seconds_count", route=start) == 3
    assert grew("localbox_request_bytes_total", route=start) == 1504
    assert grew("localbox_response_bytes_total", route="files/get_metadata") == len(missing.content)
    assert grew("localbox_errors_total", route="files/get_metadata", error="path/not_found") == 1
    assert grew("localbox_requests_total", route="unknown", status="400") == 1
    assert grew("localbox_errors_total", route="unknown", error="bad_request") == 1
    assert grew("localbox_batch_jobs_finished_total", kind="finish_batch", state="complete") == 1
    assert grew("localbox_commit_duration_seconds_count", kind="finish_batch") == 1
    assert metric(after, "localbox_upload_sessions_open") >= 1
    assert "localbox_batch_jobs{state=\"queued\"}" in after and "localbox_batch_jobs{state=\"running\"}" in after
    assert "process_cpu_seconds_total" in after


def test_json_logs_carry_the_request_id(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", ["--log-format", "json", "--log-level", "debug"]) as srv, \
            httpx.Client(base_url=srv.url, trust_env=False) as http:
        account = srv.new_account()
        r = http.post("/2/files/get_metadata", headers={"Authorization": f"Bearer {account.token}"},
                      json={"path": "/nope"})
        rid = r.headers["x-dropbox-request-id"]
        time.sleep(0.3)
        log = srv.log_path.read_text()
    lines: list[dict[str, Any]] = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message", "request_id"} <= set(e) for e in lines)
    mine = [e for e in lines if e["request_id"] == rid]
    assert mine and "files/get_metadata 409" in mine[0]["message"]
    assert any(e["logger"].startswith("uvicorn") for e in lines)  # the server's own lines are JSON too
