"""Accounts are kept apart, tokens are revocable at once, and neither tokens nor file bytes reach the log.

A second account tries every implemented route against the first account's files, sessions, jobs,
cursors and namespace (by path, `id:`, `rev:`, `ns:` path and the Dropbox-API-Path-Root header).  Each
attempt must be refused the way Dropbox refuses it (409 not_found / no_write_permission /
invalid_async_job_id, 400 for a foreign cursor, 422 no_permission for a foreign path root) and must
carry none of the first account's data; afterwards the first account sees everything unchanged.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import pytest
from _apiwire import Api, describe, tag_path
from harness import LocalServer
from reliability_backends import Backend

pytestmark = pytest.mark.reliability

SECRET = b"SECRET-" + secrets.token_hex(16).encode()

# Refusals a foreign caller may get.  Anything else (a 2xx or a 5xx above all) fails the test.
DENIED_TAGS = {"not_found", "no_write_permission", "invalid_async_job_id", "malformed_path", "no_permission",
               "invalid_revision", "invalid_root"}


def _denied(r: httpx.Response, what: str, leaks: list[bytes]) -> None:
    body = r.content + json.dumps(dict(r.headers)).encode()
    sent = r.request.content + str(r.request.url).encode() + json.dumps(dict(r.request.headers)).encode()
    for leak in leaks:
        if leak in sent and r.status_code == 400:
            continue  # a bad-input message quoting the intruder's own argument reveals nothing
        assert leak not in body, f"{what}: response reveals {leak!r}: {describe(r)}"
    if r.status_code == 400:
        return  # a foreign cursor is an invalid cursor
    assert r.status_code in (409, 422), f"{what}: {describe(r)}"
    tags = tag_path(json.loads(r.content)["error"])
    assert DENIED_TAGS & set(tags), f"{what}: {tags}"


def _batch_denied(a: Api, launch: httpx.Response, check_route: str, what: str, leaks: list[bytes]) -> None:
    """A batch by the intruder runs, but every entry fails."""
    assert launch.status_code == 200, describe(launch)
    body = launch.json()
    job = body.get("async_job_id")
    deadline = time.monotonic() + 30
    while body[".tag"] in ("async_job_id", "in_progress") and time.monotonic() < deadline:
        body = a.rpc(check_route, {"async_job_id": job}).json()
    entries = body["entries"]
    assert entries and all(e[".tag"] == "failure" for e in entries), f"{what}: {body}"
    for leak in leaks:
        assert leak not in json.dumps(body).encode(), what


@pytest.fixture(scope="module")
def victim(server: LocalServer, http: httpx.Client) -> dict[str, Any]:
    acct = server.new_account()
    a = Api(http, acct.token)
    md = a.upload_ok("/secret/a.txt", SECRET)
    old = a.upload_ok("/secret/old.txt", SECRET + b"-v1")
    a.upload_ok("/secret/old.txt", SECRET + b"-v2", mode="overwrite")
    gone = a.upload_ok("/secret/gone.txt", SECRET + b"-gone")
    assert a.rpc("files/delete_v2", {"path": "/secret/gone.txt"}).status_code == 200
    sid = a.start_ok(SECRET)
    csid = a.rpc("files/upload_session/start_batch", {"num_sessions": 1, "session_type": "concurrent"}
                 ).json()["session_ids"][0]
    closed = a.start_ok(SECRET, close=True)
    job = a.rpc("files/upload_session/finish_batch", {"entries": [
        {"cursor": {"session_id": closed, "offset": len(SECRET)}, "commit": {"path": "/secret/batch.txt"}}]}
    ).json()["async_job_id"]
    a.poll_batch(job)
    jobs = {}
    for route, arg in (
        ("files/delete_batch", {"entries": [{"path": "/secret/nothing"}]}),
        ("files/copy_batch_v2", {"entries": [{"from_path": "/secret/a.txt", "to_path": "/copies/a.txt"}]}),
        ("files/move_batch_v2", {"entries": [{"from_path": "/secret/nothing", "to_path": "/x/y"}]}),
        ("files/create_folder_batch", {"paths": ["/secret/made"], "force_async": True}),
    ):
        r = a.rpc(route, arg)
        assert r.status_code == 200, describe(r)
        jobs[route] = r.json().get("async_job_id")
    checks = {"files/delete_batch": "files/delete_batch/check", "files/copy_batch_v2": "files/copy_batch/check_v2",
              "files/move_batch_v2": "files/move_batch/check_v2",
              "files/create_folder_batch": "files/create_folder_batch/check"}
    for route, job_id in jobs.items():  # let every batch finish before the "before" picture is taken
        deadline = time.monotonic() + 30
        while job_id and a.rpc(checks[route], {"async_job_id": job_id}).json()[".tag"] == "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    cursor = a.rpc("files/list_folder", {"path": "/secret"}).json()["cursor"]
    search = a.rpc("files/search_v2", {"query": "txt", "options": {"max_results": 1}}).json()
    ns = a.current_account()["root_info"]["root_namespace_id"]
    listing = a.rpc("files/list_folder", {"path": "", "recursive": True}).json()["entries"]
    return {"api": a, "md": md, "old": old, "gone": gone, "sid": sid, "csid": csid, "job": job, "jobs": jobs,
            "cursor": cursor, "search_cursor": search.get("cursor"), "ns": ns, "listing": listing}


def test_a_second_account_reaches_nothing_of_the_first(
    server: LocalServer, http: httpx.Client, victim: dict[str, Any], backend: Backend,
) -> None:
    b = Api(http, server.new_account().token)
    v = victim
    ns, md = v["ns"], v["md"]
    leaks = [SECRET, md["id"].encode(), md["rev"].encode(), b"a.txt", b"old.txt"]
    by = {"path": "/secret/a.txt", "ns": f"ns:{ns}/secret/a.txt", "id": md["id"], "rev": f"rev:{md['rev']}",
          "old rev": f"rev:{v['old']['rev']}", "deleted rev": f"rev:{v['gone']['rev']}"}
    roots = [json.dumps({".tag": "namespace_id", "namespace_id": ns}), json.dumps({".tag": "root", "root": ns})]
    attempts = 0

    def denied(r: httpx.Response, what: str) -> None:
        nonlocal attempts
        attempts += 1
        _denied(r, what, leaks)

    for how, p in by.items():
        if how == "path":  # the intruder's own namespace: it may write there, and later reads would see that
            denied(b.download({"path": p}), "download by path")
            denied(b.metadata(p), "get_metadata by path")
            continue
        denied(b.download({"path": p}), f"download by {how}")
        denied(b.metadata(p), f"get_metadata by {how}")
        denied(b.metadata(p, include_deleted=True), f"get_metadata(include_deleted) by {how}")
        denied(b.rpc("files/list_revisions", {"path": p}), f"list_revisions by {how}")
        denied(b.rpc("files/delete_v2", {"path": p}), f"delete by {how}")
        denied(b.rpc("files/move_v2", {"from_path": p, "to_path": f"/stolen-{attempts}"}), f"move by {how}")
        denied(b.rpc("files/copy_v2", {"from_path": p, "to_path": f"/stolen-{attempts}"}), f"copy by {how}")
        denied(b.content("files/upload", {"path": p, "mode": "overwrite"}, b"evil"), f"overwrite by {how}")
    for p in (f"ns:{ns}/secret", f"ns:{ns}", f"ns:{ns}/"):
        denied(b.rpc("files/list_folder", {"path": p}), f"list_folder {p}")
        denied(b.rpc("files/list_folder/get_latest_cursor", {"path": p}), f"get_latest_cursor {p}")
        denied(b.rpc("files/create_folder_v2", {"path": f"{p}/planted"}), f"create_folder in {p}")
    denied(b.rpc("files/restore", {"path": "/secret/gone.txt", "rev": v["gone"]["rev"]}), "restore by rev")
    denied(b.rpc("files/restore", {"path": f"ns:{ns}/secret/gone.txt", "rev": v["gone"]["rev"]}), "restore into ns")
    mine = b.upload_ok("/mine.txt", b"mine")
    denied(b.rpc("files/move_v2", {"from_path": "/mine.txt", "to_path": f"ns:{ns}/secret/in.txt"}), "move into")
    denied(b.rpc("files/copy_v2", {"from_path": mine["id"], "to_path": f"ns:{ns}/secret/in.txt"}), "copy into")
    for root in roots:
        h = {"Dropbox-API-Path-Root": root}
        denied(b.rpc("files/list_folder", {"path": ""}, headers=h), f"list_folder with root {root}")
        denied(b.rpc("files/get_metadata", {"path": "/secret/a.txt"}, headers=h), f"get_metadata root {root}")
        denied(b.content("files/upload", {"path": "/secret/a.txt", "mode": "overwrite"}, b"evil", headers=h),
               f"upload with root {root}")
        denied(b.download({"path": "/secret/a.txt"}, headers=h), f"download with root {root}")
        denied(b.rpc("files/search_v2", {"query": "a"}, headers=h), f"search with root {root}")
    # Cursors, sessions and jobs made by the first account.
    denied(b.rpc("files/list_folder/continue", {"cursor": v["cursor"]}), "list_folder/continue")
    if v["search_cursor"]:
        denied(b.rpc("files/search/continue_v2", {"cursor": v["search_cursor"]}), "search/continue_v2")
    found = b.rpc("files/search_v2", {"query": "txt"})
    assert found.status_code == 200 and [m["metadata"]["metadata"]["name"] for m in found.json()["matches"]] == [
        "mine.txt"], describe(found)
    denied(b.rpc("files/search_v2", {"query": "a", "options": {"path": f"ns:{ns}/secret"}}), "search in ns")
    for sid, off in ((v["sid"], len(SECRET)), (v["csid"], 0)):
        cur = {"session_id": sid, "offset": off}
        denied(b.content("files/upload_session/append_v2", {"cursor": cur}, b"x"), "append_v2")
        denied(b.content("files/upload_session/append", {"session_id": sid, "offset": off}, b"x"), "append v1")
        denied(b.content("files/upload_session/finish", {"cursor": cur, "commit": {"path": "/stolen"}}),
               "finish")
        ab = b.content("files/upload_session/append_batch", {"entries": [{"cursor": cur, "length": 1}]}, b"x")
        assert ab.status_code == 200 and "not_found" in ab.text, describe(ab)
        fb2 = b.rpc("files/upload_session/finish_batch_v2",
                    {"entries": [{"cursor": cur, "commit": {"path": "/stolen"}}]})
        assert fb2.status_code == 200 and fb2.json()["entries"][0][".tag"] == "failure", describe(fb2)
        _batch_denied(b, b.rpc("files/upload_session/finish_batch",
                               {"entries": [{"cursor": cur, "commit": {"path": "/stolen"}}]}),
                      "files/upload_session/finish_batch/check", "finish_batch", leaks)
        attempts += 4
    for route, job in [("files/upload_session/finish_batch/check", v["job"]),
                       ("files/delete_batch/check", v["jobs"]["files/delete_batch"]),
                       ("files/copy_batch/check_v2", v["jobs"]["files/copy_batch_v2"]),
                       ("files/move_batch/check_v2", v["jobs"]["files/move_batch_v2"]),
                       ("files/create_folder_batch/check", v["jobs"]["files/create_folder_batch"])]:
        if job is None:
            continue
        r = b.rpc(route, {"async_job_id": job})
        denied(r, route)
        assert "invalid_async_job_id" in tag_path(r.json()["error"]), describe(r)
    for route, arg in (
        ("files/delete_batch", {"entries": [{"path": by["ns"]}, {"path": by["id"]}]}),
        ("files/copy_batch_v2", {"entries": [{"from_path": by["ns"], "to_path": "/c1"},
                                             {"from_path": by["id"], "to_path": "/c2"}]}),
        ("files/move_batch_v2", {"entries": [{"from_path": by["ns"], "to_path": "/m1"},
                                             {"from_path": "/mine.txt", "to_path": f"ns:{ns}/planted"}]}),
        ("files/create_folder_batch", {"paths": [f"ns:{ns}/planted"], "force_async": True}),
    ):
        check = {"files/delete_batch": "files/delete_batch/check", "files/copy_batch_v2": "files/copy_batch/check_v2",
                 "files/move_batch_v2": "files/move_batch/check_v2",
                 "files/create_folder_batch": "files/create_folder_batch/check"}[route]
        _batch_denied(b, b.rpc(route, arg), check, route, leaks)
        attempts += 1
    assert attempts > 80

    # The first account sees everything as it was, and its session and jobs still work.
    a: Api = v["api"]
    assert a.rpc("files/list_folder", {"path": "", "recursive": True}).json()["entries"] == v["listing"]
    assert a.download_bytes("/secret/a.txt") == SECRET
    assert a.finish_ok(v["sid"], len(SECRET), "/secret/finished.txt")["size"] == len(SECRET)
    assert a.poll_batch(v["job"])["entries"][0][".tag"] == "success"


def test_a_revoked_token_fails_at_once_and_others_keep_working(server: LocalServer, http: httpx.Client) -> None:
    acct = server.new_account()
    second = server.new_token(acct.email)
    a, a2 = Api(http, acct.token), Api(http, second)
    a.upload_ok("/r.txt", b"r")
    listed = server.cli("token", "list", acct.email).splitlines()
    assert len(listed) == 2
    for line in listed:
        assert acct.token not in line and second not in line and acct.token[9:20] not in line
    token_id = next(line.split()[0] for line in listed if line.split()[1] == acct.token[:9] + "...")
    assert server.cli("token", "revoke", acct.email, token_id).split() == ["revoked", token_id]
    r = a.rpc("users/get_current_account", None)  # no restart, no cache: the very next request
    assert r.status_code == 401 and r.json()["error"][".tag"] == "invalid_access_token", describe(r)
    assert a2.download_bytes("/r.txt") == b"r"
    server.cli("token", "revoke", acct.email, "--all")
    r = a2.download({"path": "/r.txt"})
    assert r.status_code == 401 and r.json()["error"][".tag"] == "invalid_access_token", describe(r)
    # A second server process on the same data dir (another node) refuses it too.
    other = LocalServer(server.data_dir)
    other.start()
    try:
        with httpx.Client(base_url=other.url, timeout=30, trust_env=False) as h2:
            assert Api(h2, second).rpc("check/user", {"query": "x"}).status_code == 401
    finally:
        other.stop()


def test_no_token_or_file_content_in_the_log(server: LocalServer, http: httpx.Client, victim: dict[str, Any]) -> None:
    """Runs after the tests above (and the failures they provoke); the debug log of a dedicated run too."""
    acct = server.new_account()
    a = Api(http, acct.token)
    a.upload_ok("/log.txt", SECRET)
    a.content("files/upload", {"path": "/bad\\name", "mode": "add"}, SECRET)  # provoke error paths
    a.rpc("files/get_metadata", raw=b'{"path": "' + SECRET + b'"')  # malformed JSON carrying content
    Api(http, acct.token + "x").rpc("users/get_current_account", None)
    Api(http, "Bearer").rpc("users/get_current_account", None)
    text = server.log_path.read_bytes()
    assert SECRET not in text
    assert acct.token.encode() not in text and acct.token[9:].encode() not in text
