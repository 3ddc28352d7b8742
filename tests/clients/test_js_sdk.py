"""The official JavaScript SDK (npm `dropbox` 10.47.0, tests/clients/js) against localbox over HTTPS: upload
sessions committed with finish_batch + finish_batch/check polling, files/upload, list_folder, download and a
409 error, as the SDK's own objects see them; then the same files checked through the Python SDK."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from clients_harness import JS_DIR, TlsServer, clean_env, dropbox_content_hash, https_sdk, run_node

PART = b"first part, " + "second part: é ☺\n".encode()
SINGLE = b"a file sent in one start(close=true)\n"
UPLOADED = b"files/upload from node\n"


def test_js_sdk_session_upload_committed_with_finish_batch_and_check(tls: TlsServer, tmp_path: Path) -> None:
    account = tls.server.new_account()
    out = run_node(JS_DIR / "session_batch.mjs", clean_env(NODE_EXTRA_CA_CERTS=str(tls.ca_file)),
                   [str(tls.port), account.token, "/js"])
    assert out.returncode == 0, f"{out.stderr}\n--- server log\n{tls.server.log()[-3000:]}"
    r = json.loads(out.stdout)

    assert r["launch_tag"] in ("async_job_id", "complete")
    if r["launch_tag"] == "async_job_id":
        assert r["polls"] >= 1
    assert r["status"][".tag"] == "complete"
    entries = r["status"]["entries"]
    assert [e[".tag"] for e in entries] == ["success"] * 3
    want = [("/js/Two Pieces ☺.txt", PART), ("/js/sub/single.txt", SINGLE), ("/js/empty.txt", b"")]
    for e, (path, data) in zip(entries, want, strict=True):
        assert (e["path_display"], e["size"], e["content_hash"]) == (path, len(data), dropbox_content_hash(data))
        assert e["path_lower"] == path.lower() and e["id"].startswith("id:")

    up = r["uploaded"]
    assert (up["path_display"], up["size"], up["content_hash"]) == (
        "/js/uploaded é.txt", len(UPLOADED), dropbox_content_hash(UPLOADED))

    assert not r["listed_has_more"]
    assert sorted((e["tag"], e["name"]) for e in r["listed"]) == sorted(
        [("file", "Two Pieces ☺.txt"), ("file", "empty.txt"), ("file", "uploaded é.txt"), ("folder", "sub")])
    assert r["downloaded"]["name"] == "Two Pieces ☺.txt" and r["downloaded"]["size"] == len(PART)
    assert base64.b64decode(r["downloaded"]["bytes_b64"]) == PART
    assert r["not_found"] == {"status": 409, "tag": "path", "error_summary": r["not_found"]["error_summary"]}
    assert r["not_found"]["error_summary"].startswith("path/not_found/")

    with https_sdk(tls, account.token) as dbx:  # the server agrees, seen through the other SDK
        for path, data in [*want, ("/js/uploaded é.txt", UPLOADED)]:
            md = dbx.files_get_metadata(path)
            assert (md.path_display, md.size, md.content_hash) == (path, len(data), dropbox_content_hash(data))
        _, resp = dbx.files_download("/js/sub/single.txt")
        assert resp.content == SINGLE
