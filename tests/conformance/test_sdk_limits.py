"""Server limits: --session-ttl, --max-session-size, --job-retention, the 150 MiB request limit.

The first three run against a dedicated `localbox serve` with tiny limits; the 150 MiB tests use the shared
module server and are marked slow (they each push ~150 MiB through loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from dropbox import files
from harness import make_sdk, running_server
from sdk_helpers import (
    BLOCK,
    MAX_REQUEST,
    api_error,
    assert_file,
    blob,
    commit,
    cursor,
    finish_arg,
    launch_batch,
    run_batch,
    start_closed,
    success,
    tag_path,
    wait_job,
)

pytestmark = pytest.mark.conformance

TTL = 2
RETENTION = 2
MAX_SESSION = 64 * 1024


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    args = ["--session-ttl", str(TTL), "--job-retention", str(RETENTION), "--max-session-size", str(MAX_SESSION)]
    with running_server(tmp_path_factory.mktemp("limited") / "data", args) as srv:
        yield srv


@pytest.fixture()
def ldbx(limited: Any) -> Any:
    return make_sdk(limited, limited.new_account().token)


# -- --session-ttl --------------------------------------------------------------------------------
def test_session_expires_after_ttl(ldbx) -> None:
    fresh = start_closed(ldbx, b"fresh")
    md = ldbx.files_upload_session_finish(b"", cursor(fresh, 5), commit("/fresh.txt"))
    assert_file(md, "/fresh.txt", b"fresh")  # within the TTL everything works

    s_append = ldbx.files_upload_session_start(b"abc").session_id
    s_finish = ldbx.files_upload_session_start(b"abc").session_id
    s_batch1 = start_closed(ldbx, b"abc")
    s_batch2 = start_closed(ldbx, b"abc")
    time.sleep(TTL + 1.5)
    assert tag_path(api_error(ldbx.files_upload_session_append_v2, b"d", cursor(s_append, 3))) == "not_found"
    err = api_error(ldbx.files_upload_session_finish, b"", cursor(s_finish, 3), commit("/late.txt"))
    assert tag_path(err) == "lookup_failed/not_found"
    (r1,) = run_batch(ldbx, [finish_arg(s_batch1, 3, "/late1.txt")], route="v2")
    assert tag_path(r1.get_failure()) == "lookup_failed/not_found"
    (r2,) = run_batch(ldbx, [finish_arg(s_batch2, 3, "/late2.txt")], route="v1")
    assert tag_path(r2.get_failure()) == "lookup_failed/not_found"
    assert [m.name for m in ldbx.files_list_folder("").entries] == ["fresh.txt"]


# -- --max-session-size ------------------------------------------------------------------------------
def test_append_beyond_max_session_size_is_too_large(ldbx) -> None:
    head = blob(40_000)
    sid = ldbx.files_upload_session_start(head).session_id
    err = api_error(ldbx.files_upload_session_append_v2, blob(MAX_SESSION - 40_000 + 1), cursor(sid, 40_000))
    assert isinstance(err, files.UploadSessionAppendError)
    assert tag_path(err) == "too_large"
    # rejected data was not kept; filling up to exactly the limit is fine
    tail = blob(MAX_SESSION - 40_000)
    ldbx.files_upload_session_append_v2(tail, cursor(sid, 40_000), close=True)
    md = ldbx.files_upload_session_finish(b"", cursor(sid, MAX_SESSION), commit("/exact-limit.bin"))
    assert_file(md, "/exact-limit.bin", head + tail)


def test_finish_data_beyond_max_session_size_is_too_large(ldbx) -> None:
    sid = ldbx.files_upload_session_start(blob(60_000)).session_id
    err = api_error(ldbx.files_upload_session_finish, blob(10_000), cursor(sid, 60_000), commit("/big.bin"))
    assert tag_path(err) == "lookup_failed/too_large"
    assert tag_path(api_error(ldbx.files_get_metadata, "/big.bin")) == "path/not_found"


def test_append_batch_entry_beyond_max_session_size(ldbx) -> None:
    ok = ldbx.files_upload_session_start(b"").session_id
    big = ldbx.files_upload_session_start(blob(60_000)).session_id
    res = ldbx.files_upload_session_append_batch(blob(10 + 10_000), [
        files.UploadSessionAppendBatchArgEntry(cursor=cursor(ok, 0), length=10),
        files.UploadSessionAppendBatchArgEntry(cursor=cursor(big, 60_000), length=10_000),
    ])
    assert res.entries[0].is_success()
    assert tag_path(res.entries[1].get_failure()) == "too_large"


def test_concurrent_block_beyond_max_session_size(ldbx) -> None:
    sid = ldbx.files_upload_session_start(b"", session_type=files.UploadSessionType.concurrent).session_id
    err = api_error(ldbx.files_upload_session_append_v2, bytes(BLOCK), cursor(sid, 0))
    assert tag_path(err) == "too_large"


# -- --job-retention -------------------------------------------------------------------------------
def test_finished_job_is_forgotten_after_retention(ldbx) -> None:
    sid = start_closed(ldbx, b"kept")
    job = launch_batch(ldbx, [finish_arg(sid, 4, "/kept.txt")])
    (entry,) = wait_job(ldbx, job)
    assert_file(success(entry), "/kept.txt", b"kept")
    (again,) = wait_job(ldbx, job, timeout=5)  # still there right after completion
    assert success(again).rev == success(entry).rev
    time.sleep(RETENTION + 1.5)
    assert tag_path(api_error(ldbx.files_upload_session_finish_batch_check, job)) == "invalid_async_job_id"
    # the committed file is of course not affected
    assert ldbx.files_get_metadata("/kept.txt").rev == success(entry).rev


# -- 150 MiB per request -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def over_limit() -> bytes:
    return bytes(MAX_REQUEST + 1)


@pytest.mark.slow
def test_upload_body_over_150_mib_is_payload_too_large(dbx, over_limit: bytes) -> None:
    err = api_error(dbx.files_upload, over_limit, "/huge.bin")
    assert isinstance(err, files.UploadError)
    assert tag_path(err) == "payload_too_large"
    assert tag_path(api_error(dbx.files_get_metadata, "/huge.bin")) == "path/not_found"
    # exactly 150 MiB is allowed
    exact = memoryview(over_limit)[:MAX_REQUEST].tobytes()
    assert_file(dbx.files_upload(exact, "/exact150.bin"), "/exact150.bin", exact)


@pytest.mark.slow
def test_session_calls_over_150_mib_are_payload_too_large(dbx, over_limit: bytes) -> None:
    err = api_error(dbx.files_upload_session_start, over_limit)
    assert isinstance(err, files.UploadSessionStartError)
    assert tag_path(err) == "payload_too_large"
    sid = dbx.files_upload_session_start(b"head").session_id
    err = api_error(dbx.files_upload_session_append_v2, over_limit, cursor(sid, 4))
    assert tag_path(err) == "payload_too_large"
    err = api_error(dbx.files_upload_session_finish, over_limit, cursor(sid, 4), commit("/huge2.bin"))
    assert tag_path(err) == "payload_too_large"
    # the session is intact afterwards
    md = dbx.files_upload_session_finish(b"tail", cursor(sid, 4), commit("/huge2.bin"))
    assert_file(md, "/huge2.bin", b"headtail")
