"""Concurrent upload sessions (session_type=concurrent) and start_batch."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from dropbox import files
from sdk_helpers import (
    BLOCK,
    api_error,
    assert_file,
    blob,
    commit,
    cursor,
    download,
    finish_arg,
    run_batch,
    success,
    tag_path,
)

pytestmark = pytest.mark.conformance

CONCURRENT = files.UploadSessionType.concurrent


def _concurrent_session(dbx) -> str:
    return str(dbx.files_upload_session_start(b"", session_type=CONCURRENT).session_id)


def _append_out_of_order(dbx, sid: str, data: bytes, seed: int = 0) -> None:
    """Every 4 MiB block plus the short closing tail, in a shuffled order."""
    offsets = list(range(0, len(data), BLOCK))
    random.Random(seed).shuffle(offsets)
    last = offsets and max(offsets)
    for off in offsets:
        piece = data[off:off + BLOCK]
        dbx.files_upload_session_append_v2(piece, cursor(sid, off), close=(off == last))


def test_start_batch_returns_distinct_usable_sessions(dbx) -> None:
    res = dbx.files_upload_session_start_batch(5)
    ids = list(res.session_ids)
    assert len(ids) == 5 and len(set(ids)) == 5
    # default session type is sequential: in-order appends, finish without close
    datas = [blob(10 + i, f"sb{i}") for i in range(5)]
    for sid, d in zip(ids, datas, strict=True):
        dbx.files_upload_session_append_v2(d, cursor(sid, 0), close=True)
    results = run_batch(dbx, [finish_arg(s, len(d), f"/sb/{i}")
                              for i, (s, d) in enumerate(zip(ids, datas, strict=True))])
    for i, d in enumerate(datas):
        assert_file(success(results[i]), f"/sb/{i}", d)


def test_concurrent_session_out_of_order_appends(dbx) -> None:
    data = blob(3 * BLOCK + 777, "concurrent")
    sid = _concurrent_session(dbx)
    _append_out_of_order(dbx, sid, data, seed=7)
    md = dbx.files_upload_session_finish(b"", cursor(sid, len(data)), commit("/conc/one.bin"))
    assert_file(md, "/conc/one.bin", data)
    assert download(dbx, "/conc/one.bin")[1] == data


def test_concurrent_sessions_from_start_batch_in_parallel_threads(dbx, per_thread_dbx) -> None:
    sids = list(dbx.files_upload_session_start_batch(3, session_type=CONCURRENT).session_ids)
    datas = [blob(2 * BLOCK + 10 * i + 1, f"par{i}") for i in range(3)]
    jobs = []
    for sid, data in zip(sids, datas, strict=True):
        offsets = list(range(0, len(data), BLOCK))
        for off in offsets:
            jobs.append((sid, off, data[off:off + BLOCK], off == offsets[-1]))
    random.Random(3).shuffle(jobs)

    def send(job) -> None:
        sid, off, piece, close = job
        per_thread_dbx().files_upload_session_append_v2(piece, cursor(sid, off), close=close)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, jobs))
    results = run_batch(dbx, [finish_arg(s, len(d), f"/conc/p{i}.bin")
                              for i, (s, d) in enumerate(zip(sids, datas, strict=True))], route="v1")
    for i, d in enumerate(datas):
        assert_file(success(results[i]), f"/conc/p{i}.bin", d)


def test_concurrent_single_short_closing_append(dbx) -> None:
    sid = _concurrent_session(dbx)
    dbx.files_upload_session_append_v2(b"tiny", cursor(sid, 0), close=True)
    md = dbx.files_upload_session_finish(b"", cursor(sid, 4), commit("/conc/tiny"))
    assert_file(md, "/conc/tiny", b"tiny")


def test_concurrent_data_on_start_not_allowed(dbx) -> None:
    err = api_error(dbx.files_upload_session_start, b"data", session_type=CONCURRENT)
    assert isinstance(err, files.UploadSessionStartError)
    assert tag_path(err) == "concurrent_session_data_not_allowed"


def test_concurrent_close_on_start_not_allowed(dbx) -> None:
    err = api_error(dbx.files_upload_session_start, b"", close=True, session_type=CONCURRENT)
    assert tag_path(err) == "concurrent_session_close_not_allowed"


@pytest.mark.parametrize("offset", [1, 100, BLOCK - 1, BLOCK + 4096])
def test_concurrent_unaligned_offset(dbx, offset: int) -> None:
    sid = _concurrent_session(dbx)
    err = api_error(dbx.files_upload_session_append_v2, bytes(BLOCK), cursor(sid, offset))
    assert tag_path(err) == "concurrent_session_invalid_offset"


@pytest.mark.parametrize("size", [1, BLOCK - 1, BLOCK + 1])
def test_concurrent_non_block_multiple_without_close(dbx, size: int) -> None:
    sid = _concurrent_session(dbx)
    err = api_error(dbx.files_upload_session_append_v2, bytes(size), cursor(sid, 0))
    assert tag_path(err) == "concurrent_session_invalid_data_size"


def test_concurrent_multi_block_append_allowed(dbx) -> None:
    data = blob(2 * BLOCK + 5)
    sid = _concurrent_session(dbx)
    dbx.files_upload_session_append_v2(data[:2 * BLOCK], cursor(sid, 0))
    dbx.files_upload_session_append_v2(data[2 * BLOCK:], cursor(sid, 2 * BLOCK), close=True)
    assert_file(dbx.files_upload_session_finish(b"", cursor(sid, len(data)), commit("/conc/multi")),
                "/conc/multi", data)


def test_concurrent_data_on_finish_not_allowed(dbx) -> None:
    sid = _concurrent_session(dbx)
    dbx.files_upload_session_append_v2(b"abc", cursor(sid, 0), close=True)
    err = api_error(dbx.files_upload_session_finish, b"def", cursor(sid, 3), commit("/conc/df"))
    assert isinstance(err, files.UploadSessionFinishError)
    assert tag_path(err) == "concurrent_session_data_not_allowed"
    # the session is still committable
    assert_file(dbx.files_upload_session_finish(b"", cursor(sid, 3), commit("/conc/df")), "/conc/df", b"abc")


def test_concurrent_finish_not_closed(dbx) -> None:
    sid = _concurrent_session(dbx)
    dbx.files_upload_session_append_v2(bytes(BLOCK), cursor(sid, 0))
    err = api_error(dbx.files_upload_session_finish, b"", cursor(sid, BLOCK), commit("/conc/nc"))
    assert tag_path(err) == "concurrent_session_not_closed"


def test_concurrent_finish_missing_data(dbx) -> None:
    data = blob(2 * BLOCK + 9)
    sid = _concurrent_session(dbx)
    dbx.files_upload_session_append_v2(data[:BLOCK], cursor(sid, 0))
    # block [BLOCK, 2*BLOCK) never sent
    dbx.files_upload_session_append_v2(data[2 * BLOCK:], cursor(sid, 2 * BLOCK), close=True)
    err = api_error(dbx.files_upload_session_finish, b"", cursor(sid, len(data)), commit("/conc/md"))
    assert tag_path(err) == "concurrent_session_missing_data"
    assert tag_path(api_error(dbx.files_get_metadata, "/conc/md")) == "path/not_found"
    # supplying the gap makes it committable
    dbx.files_upload_session_append_v2(data[BLOCK:2 * BLOCK], cursor(sid, BLOCK))
    assert_file(dbx.files_upload_session_finish(b"", cursor(sid, len(data)), commit("/conc/md")),
                "/conc/md", data)


def test_concurrent_not_closed_in_finish_batch(dbx) -> None:
    sid = _concurrent_session(dbx)
    dbx.files_upload_session_append_v2(bytes(BLOCK), cursor(sid, 0))
    for route in ("v1", "v2"):
        (entry,) = run_batch(dbx, [finish_arg(sid, BLOCK, "/conc/ncb")], route=route)
        assert entry.is_failure()
        assert tag_path(entry.get_failure()) == "concurrent_session_not_closed"
