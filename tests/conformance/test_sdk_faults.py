"""Injected faults against the official SDK: each fault in Dropbox's wire form, and what the SDK really
does with it (retries, backoff, the exception it raises), on a real `localbox serve --memory`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dropbox
import pytest
import requests
from dropbox import files
from dropbox.exceptions import ApiError, InternalServerError, RateLimitError
from harness import LocalServer, local_session, running_server

from localbox.testing import AdminClient

pytestmark = [pytest.mark.conformance, pytest.mark.filterwarnings("ignore:upload_session/finish_batch is deprecated")]
ADMIN = "admin-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with running_server(tmp_path_factory.mktemp("faults") / "data", ["--memory", "--admin-token", ADMIN]) as s:
        yield s


@pytest.fixture()
def admin(srv: LocalServer) -> Iterator[AdminClient]:
    client = AdminClient(srv.url, ADMIN)
    yield client
    client.clear_faults()


@pytest.fixture()
def user(admin: AdminClient) -> dict[str, Any]:
    return admin.add_account(f"u-{secrets.token_hex(4)}@example.com")


def sdk(srv: LocalServer, user: dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("max_retries_on_error", 0)
    kwargs.setdefault("max_retries_on_rate_limit", 0)
    return dropbox.Dropbox(user["tokens"][0], session=local_session(srv.url), **kwargs)


def closed_session(dbx: Any, data: bytes) -> str:
    return str(dbx.files_upload_session_start(data, close=True).session_id)


def finish_arg(session_id: str, size: int, path: str) -> Any:
    return files.UploadSessionFinishArg(files.UploadSessionCursor(session_id, size), files.CommitInfo(path))


# -- call-level ------------------------------------------------------------------------------
def test_429_json_is_retried_after_retry_after(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    admin.add_fault("too_many_requests", route="files/upload", account=user["email"], times=2, retry_after=1)
    dbx = sdk(srv, user, max_retries_on_rate_limit=2)
    started = time.monotonic()
    dbx.files_upload(b"x", "/a.txt")
    assert time.monotonic() - started >= 2.0  # two backoffs of retry_after=1 s
    [rule] = admin.faults()
    assert (rule["matched"], rule["fired"], rule["exhausted"]) == (2, 2, True)
    assert dbx.files_get_metadata("/a.txt").size == 1


def test_429_reasons_and_text_body_as_the_sdk_sees_them(srv: LocalServer, admin: AdminClient,
                                                        user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    admin.add_fault("too_many_write_operations", route="files/create_folder_v2", times=1, retry_after=3)
    with pytest.raises(RateLimitError) as e:
        dbx.files_create_folder_v2("/f")
    assert e.value.error.reason.is_too_many_write_operations() and e.value.backoff == 3
    admin.add_fault("too_many_requests", route="files/create_folder_v2", times=1, retry_after=4, format="text")
    with pytest.raises(RateLimitError) as e:
        dbx.files_create_folder_v2("/f")
    assert e.value.error is None and e.value.backoff == 4  # text body: the SDK backs off by Retry-After
    dbx.files_create_folder_v2("/f")  # the faults are spent; nothing was applied before


def test_5xx_is_retried_by_the_sdk_and_not_applied(srv: LocalServer, admin: AdminClient,
                                                   user: dict[str, Any]) -> None:
    admin.add_fault("server_error", route="files/upload", times=1, status=503, retry_after=1)
    sdk(srv, user, max_retries_on_error=1).files_upload(b"ok", "/five.txt")
    admin.add_fault("server_error", route="files/upload", times=1)
    dbx = sdk(srv, user)
    with pytest.raises(InternalServerError) as e:
        dbx.files_upload(b"no", "/five-hundred.txt")
    assert e.value.status_code == 500
    with pytest.raises(ApiError):
        dbx.files_get_metadata("/five-hundred.txt")


def test_dropped_append_response_then_retry_meets_incorrect_offset(srv: LocalServer, admin: AdminClient,
                                                                   user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    session_id = dbx.files_upload_session_start(b"a" * 100).session_id
    admin.add_fault("drop_response", route="files/upload_session/append_v2", times=1)
    cursor = files.UploadSessionCursor(session_id, 100)
    with pytest.raises(requests.exceptions.ConnectionError):
        dbx.files_upload_session_append_v2(b"b" * 50, cursor)
    with pytest.raises(ApiError) as e:  # the append was stored: the client's retry is one too many
        dbx.files_upload_session_append_v2(b"b" * 50, cursor)
    assert e.value.error.get_incorrect_offset().correct_offset == 150
    dbx.files_upload_session_finish(b"", files.UploadSessionCursor(session_id, 150), files.CommitInfo("/d.bin"))
    assert dbx.files_download("/d.bin")[1].content == b"a" * 100 + b"b" * 50
    log = [r for r in admin.requests() if r["route"] == "files/upload_session/append_v2"]
    assert log[-2]["status"] is None and log[-2]["error"] == "response_dropped"
    assert log[-2]["faults"][0].endswith(":drop_response")
    assert log[-1]["error"] == "incorrect_offset"


def test_partial_body_keeps_a_prefix_and_the_client_resumes_from_correct_offset(
        srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    session_id = dbx.files_upload_session_start(b"").session_id
    admin.add_fault("partial_body", route="files/upload_session/append_v2", times=1, bytes=7)
    data = bytes(range(20))
    with pytest.raises(requests.exceptions.ConnectionError):
        dbx.files_upload_session_append_v2(data, files.UploadSessionCursor(session_id, 0))
    with pytest.raises(ApiError) as e:
        dbx.files_upload_session_append_v2(data, files.UploadSessionCursor(session_id, 0))
    taken = e.value.error.get_incorrect_offset().correct_offset
    assert taken == 7
    dbx.files_upload_session_finish(data[taken:], files.UploadSessionCursor(session_id, taken),
                                    files.CommitInfo("/p.bin"))
    assert dbx.files_download("/p.bin")[1].content == data


def test_expired_session_and_insufficient_space(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    session_id = dbx.files_upload_session_start(b"abc").session_id
    admin.add_fault("expired_session", account=user["account_id"], times=1)
    with pytest.raises(ApiError) as e:
        dbx.files_upload_session_append_v2(b"d", files.UploadSessionCursor(session_id, 3))
    assert e.value.error.is_not_found()
    with pytest.raises(ApiError) as e:  # expired for good, as a real one is
        dbx.files_upload_session_finish(b"", files.UploadSessionCursor(session_id, 3), files.CommitInfo("/e"))
    assert e.value.error.get_lookup_failed().is_not_found()
    admin.add_fault("insufficient_space", route="files/upload", times=1)
    with pytest.raises(ApiError) as e:
        dbx.files_upload(b"big", "/full.txt")
    assert e.value.error.get_path().reason.is_insufficient_space()
    dbx.files_upload(b"big", "/full.txt")


def test_latency_and_path_globs(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    admin.add_fault("latency", path="/slow/*", seconds=0.6)
    started = time.monotonic()
    dbx.files_upload(b"1", "/fast.txt")
    fast = time.monotonic() - started
    started = time.monotonic()
    dbx.files_upload(b"1", "/Slow/x.txt")  # paths match case-insensitively, as Dropbox compares them
    assert time.monotonic() - started >= 0.6 > fast


def test_probability_with_a_seed_repeats_exactly(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    def run() -> list[bool]:
        admin.clear_faults()
        admin.add_fault("too_many_requests", route="check/user", probability=0.5, seed=42)
        dbx = sdk(srv, user)
        outcome = []
        for _ in range(20):
            try:
                dbx.check_user("x")
                outcome.append(True)
            except RateLimitError:
                outcome.append(False)
        return outcome

    first = run()
    assert first == run()
    assert 3 <= first.count(False) <= 17


# -- batches -------------------------------------------------------------------------------
def test_finish_batch_v2_entry_too_many_write_operations(srv: LocalServer, admin: AdminClient,
                                                         user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    args = [finish_arg(closed_session(dbx, b"%d" % i), 1, f"/b/{i}.txt") for i in range(4)]
    admin.add_fault("entry_too_many_write_operations", path="/b/[13].txt")
    result = dbx.files_upload_session_finish_batch_v2(args)
    failed = [i for i, e in enumerate(result.entries) if e.is_failure()]
    assert failed == [1, 3]
    assert all(result.entries[i].get_failure().is_too_many_write_operations() for i in failed)
    admin.clear_faults()
    retry = dbx.files_upload_session_finish_batch_v2([args[i] for i in failed])  # the sessions stay usable
    assert all(e.is_success() for e in retry.entries)
    assert sorted(e.name for e in dbx.files_list_folder("/b").entries) == ["0.txt", "1.txt", "2.txt", "3.txt"]


def test_finish_batch_stuck_then_complete_with_entry_failure(srv: LocalServer, admin: AdminClient,
                                                             user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    args = [finish_arg(closed_session(dbx, b"x"), 1, f"/s/{i}.txt") for i in range(2)]
    admin.add_fault("job_stuck", times=1, seconds=1.5)
    admin.add_fault("entry_too_many_write_operations", times=1, after=1)  # the second entry
    job = dbx.files_upload_session_finish_batch(args).get_async_job_id()
    started = time.monotonic()
    while (status := dbx.files_upload_session_finish_batch_check(job)).is_in_progress():
        time.sleep(0.1)
    assert time.monotonic() - started >= 1.2
    entries = status.get_complete().entries
    assert entries[0].is_success() and entries[1].get_failure().is_too_many_write_operations()


def test_finish_batch_stuck_forever_and_internal_error(srv: LocalServer, admin: AdminClient,
                                                       user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    admin.add_fault("job_stuck", route="files/upload_session/finish_batch/check", times=1)
    stuck = dbx.files_upload_session_finish_batch([finish_arg(closed_session(dbx, b"1"), 1, "/x/stuck")])
    admin.add_fault("job_internal_error", times=1, committed=True)
    done = dbx.files_upload_session_finish_batch([finish_arg(closed_session(dbx, b"2"), 1, "/x/committed")])
    admin.add_fault("job_internal_error", times=1)
    lost = dbx.files_upload_session_finish_batch([finish_arg(closed_session(dbx, b"3"), 1, "/x/lost")])
    time.sleep(1.0)
    assert dbx.files_upload_session_finish_batch_check(stuck.get_async_job_id()).is_in_progress()
    for job in (done, lost):
        with pytest.raises(ApiError) as e:
            dbx.files_upload_session_finish_batch_check(job.get_async_job_id())
        assert e.value.error.is_internal_error()
    names = {e.name for e in dbx.files_list_folder("/x").entries}
    assert names == {"committed"}  # internal_error after committing vs without


def test_invalid_async_job_id_on_check(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    job = dbx.files_upload_session_finish_batch([finish_arg(closed_session(dbx, b"1"), 1, "/j")])
    admin.add_fault("invalid_async_job_id", account=user["email"], times=1)
    with pytest.raises(ApiError) as e:
        dbx.files_upload_session_finish_batch_check(job.get_async_job_id())
    assert e.value.error.is_invalid_async_job_id()
    time.sleep(0.3)
    assert dbx.files_upload_session_finish_batch_check(job.get_async_job_id()).is_complete()


# -- state -----------------------------------------------------------------------------------
def test_reset_one_account_leaves_the_others(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    other = admin.add_account(f"o-{secrets.token_hex(4)}@example.com", name="Other One",
                              files=[{"path": "/keep.txt", "content": "kept"}])
    sdk(srv, user).files_upload(b"gone", "/gone.txt")
    assert admin.reset(user["email"])["reset"] == user["account_id"]
    with pytest.raises(dropbox.exceptions.AuthError):
        sdk(srv, user).users_get_current_account()
    assert sdk(srv, other).files_download("/keep.txt")[1].content == b"kept"


def test_seed_file_with_fixed_tokens_comes_back_after_reset(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "deep.txt").write_bytes(b"deep")
    (tree / "top.bin").write_bytes(bytes(range(256)))
    seed = tmp_path / "seed.json"
    seed.write_text('{"accounts": [{"email": "ci@example.com", "name": "Ci Bot", "quota": "1MiB", '
                    '"tokens": ["sl.ci-fixed", {"token": "sl.ci-read", "scopes": ["files.metadata.read"]}], '
                    '"folders": ["/Empty"], "files": [{"path": "/hello.txt", "content": "hi"}], '
                    '"import": {"from": "tree", "to": "/imported"}}]}')
    with running_server(tmp_path / "data", ["--memory", "--seed", str(seed), "--admin-token", ADMIN]) as s:
        dbx = dropbox.Dropbox("sl.ci-fixed", session=local_session(s.url))
        listing = dbx.files_list_folder("", recursive=True).entries
        assert sorted(e.path_display for e in listing) == [
            "/Empty", "/hello.txt", "/imported", "/imported/sub", "/imported/sub/deep.txt", "/imported/top.bin"]
        assert dbx.files_download("/imported/top.bin")[1].content == bytes(range(256))
        assert dbx.users_get_space_usage().allocation.get_individual().allocated == 1024 * 1024
        reader = dropbox.Dropbox("sl.ci-read", session=local_session(s.url))
        reader.files_list_folder("")
        with pytest.raises(dropbox.exceptions.AuthError):
            reader.files_upload(b"x", "/nope")
        dbx.files_upload(b"x", "/later.txt")
        AdminClient(s.url, ADMIN).reset()
        assert "/later.txt" not in {e.path_lower for e in dbx.files_list_folder("").entries}
        assert dbx.files_download("/hello.txt")[1].content == b"hi"
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())  # --memory: no files


# -- session lookup, size and path-root faults -------------------------------------------------
def test_closed_on_append_and_finish_stores_nothing(srv: LocalServer, admin: AdminClient,
                                                    user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    session_id = dbx.files_upload_session_start(b"a" * 10).session_id
    cursor = files.UploadSessionCursor(session_id, 10)
    admin.add_fault("closed", route="files/upload_session/append_v2", times=1)
    with pytest.raises(ApiError) as e:
        dbx.files_upload_session_append_v2(b"b" * 5, cursor)
    assert e.value.error.is_closed()
    dbx.files_upload_session_append_v2(b"b" * 5, cursor)  # nothing was stored: offset 10 is still right
    admin.add_fault("closed", route="files/upload_session/finish", times=1)
    done = files.UploadSessionCursor(session_id, 15)
    with pytest.raises(ApiError) as e:
        dbx.files_upload_session_finish(b"", done, files.CommitInfo("/closed.bin"))
    assert e.value.error.is_lookup_failed() and e.value.error.get_lookup_failed().is_closed()
    dbx.files_upload_session_finish(b"", done, files.CommitInfo("/closed.bin"))
    assert dbx.files_download("/closed.bin")[1].content == b"a" * 10 + b"b" * 5


def test_too_large_and_payload_too_large(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    session_id = dbx.files_upload_session_start(b"").session_id
    admin.add_fault("too_large", route="files/upload_session/append_v2", times=1)
    with pytest.raises(ApiError) as e:
        dbx.files_upload_session_append_v2(b"x", files.UploadSessionCursor(session_id, 0))
    assert e.value.error.is_too_large()
    admin.add_fault("payload_too_large", route="files/upload", times=1)
    with pytest.raises(ApiError) as e:
        dbx.files_upload(b"big", "/big.bin")
    assert e.value.error.is_payload_too_large()
    admin.add_fault("payload_too_large", route="files/upload_session/start", times=1)
    with pytest.raises(ApiError) as e:
        dbx.files_upload_session_start(b"big")
    assert e.value.error.is_payload_too_large()
    with pytest.raises(ApiError):
        dbx.files_get_metadata("/big.bin")  # refused calls store nothing
    log = [r for r in admin.requests() if r["route"] == "files/upload"]
    assert log[-1]["error"] == "payload_too_large" and log[-1]["faults"][0].endswith(":payload_too_large")


def test_not_closed_entries_in_finish_batch_v2_and_finish_batch(srv: LocalServer, admin: AdminClient,
                                                                user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    admin.add_fault("not_closed", route="files/upload_session/finish_batch*", path="/nc/b*", account=user["email"])
    ids = [closed_session(dbx, name.encode()) for name in ("a", "b")]
    args = [finish_arg(i, 1, f"/nc/{n}.txt") for i, n in zip(ids, "ab", strict=True)]
    a, b = dbx.files_upload_session_finish_batch_v2(args).entries
    assert a.is_success()
    failure = b.get_failure()
    assert failure.is_lookup_failed() and failure.get_lookup_failed().is_not_closed()
    launched = dbx.files_upload_session_finish_batch([args[1]])  # the same session again, through a job
    deadline = time.monotonic() + 10
    status = dbx.files_upload_session_finish_batch_check(launched.get_async_job_id())
    while status.is_in_progress() and time.monotonic() < deadline:
        time.sleep(0.1)
        status = dbx.files_upload_session_finish_batch_check(launched.get_async_job_id())
    [entry] = status.get_complete().entries
    assert entry.get_failure().get_lookup_failed().is_not_closed()
    admin.clear_faults()
    [again] = dbx.files_upload_session_finish_batch_v2([args[1]]).entries  # the session stayed usable
    assert again.get_success().path_display == "/nc/b.txt"


def test_path_root_faults_are_422_with_the_users_root_info(srv: LocalServer, admin: AdminClient,
                                                           user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    root = dbx.users_get_current_account().root_info
    admin.add_fault("invalid_root", route="files/list_folder", times=1)
    with pytest.raises(dropbox.exceptions.PathRootError) as e:
        dbx.files_list_folder("")
    info = e.value.error.get_invalid_root()
    assert (info.root_namespace_id, info.home_namespace_id) == (root.root_namespace_id, root.home_namespace_id)
    admin.add_fault("no_permission", route="files/get_metadata", times=1)
    with pytest.raises(dropbox.exceptions.PathRootError) as e:
        dbx.files_get_metadata("/nothing")
    assert e.value.error.is_no_permission()
    dbx.files_list_folder("")  # spent
    statuses = [r["status"] for r in admin.requests() if r["route"] in ("files/list_folder", "files/get_metadata")]
    assert statuses[-3:] == [422, 422, 200]


def test_connection_reset_mid_download_is_a_short_read(srv: LocalServer, admin: AdminClient,
                                                       user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    data = bytes(range(256)) * 4096  # 1 MiB
    dbx.files_upload(data, "/reset.bin")
    admin.add_fault("connection_reset", route="files/download", times=1, bytes=300_000)
    md, response = dbx.files_download("/reset.bin")
    assert md.size == len(data) and response.headers["Content-Length"] == str(len(data))
    got = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in response.iter_content(1000):  # a read cut short is lost with the error: 1000 divides the cut
            got += chunk
    assert bytes(got) == data[:300_000]  # the prefix arrived intact, then the connection broke
    assert dbx.files_download("/reset.bin")[1].content == data  # a retry gets it all
    admin.add_fault("connection_reset", route="files/download", times=1)  # default: half of the body
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = dbx.files_download("/reset.bin")[1].content
    log = [r for r in admin.requests() if r["route"] == "files/download"]
    assert [r["error"] for r in log[-3:]] == ["connection_reset", None, "connection_reset"]
    assert log[-1]["status"] == 200 and log[-1]["faults"][0].endswith(":connection_reset")


def test_kinds_lists_the_whole_catalogue(admin: AdminClient) -> None:
    kinds = admin.call("GET", "/admin/faults/kinds")
    for name in ("closed", "not_closed", "too_large", "payload_too_large", "invalid_root", "no_permission",
                 "connection_reset", "slow_commit", "entry_too_many_write_operations", "job_stuck"):
        assert name in kinds, name
    assert kinds["connection_reset"]["params"] == {"bytes": None, "fraction": 0.5}
