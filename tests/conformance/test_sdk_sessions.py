"""Sequential upload sessions: start / append (v1) / append_v2 / append_batch / finish, driven by the SDK."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from dropbox import files
from dropbox.exceptions import ApiError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk_helpers import (
    EMPTY_HASH,
    MiB,
    api_error,
    assert_file,
    blob,
    commit,
    content_hash,
    correct_offset,
    cursor,
    download,
    finish_arg,
    list_all,
    run_batch,
    start_closed,
    success,
    tag_path,
)

pytestmark = pytest.mark.conformance


def test_content_hash_helper_matches_published_vectors() -> None:
    # Guards the expected values every other test computes (vectors from the wire-facts doc).
    assert content_hash(b"") == EMPTY_HASH
    assert content_hash(b"hello") == "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
    assert content_hash(bytes(4 * MiB)) == "c7e946d101855255d919ef0c70718633adf77d3dfb3adeeecf5d0cb4e951be58"
    assert content_hash(bytes(4 * MiB + 1)) == (
        "14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6")


def test_session_start_append_v1_v2_finish_roundtrip(dbx) -> None:
    data = blob(9 * MiB + 123, "roundtrip")  # crosses two 4 MiB block boundaries
    parts = [data[:MiB], data[MiB:5 * MiB], data[5 * MiB:6 * MiB], data[6 * MiB:]]
    sid = dbx.files_upload_session_start(parts[0]).session_id
    assert isinstance(sid, str) and sid
    dbx.files_upload_session_append_v2(parts[1], cursor(sid, len(parts[0])))
    off = len(parts[0]) + len(parts[1])
    dbx.files_upload_session_append(parts[2], sid, off)  # deprecated v1: bare cursor
    off += len(parts[2])
    md = dbx.files_upload_session_finish(parts[3], cursor(sid, off), commit("/rt/Big File.bin"))
    assert_file(md, "/rt/Big File.bin", data)
    got_md, body, _ = download(dbx, "/rt/big file.bin")
    assert body == data
    assert got_md.id == md.id and got_md.rev == md.rev
    assert got_md.content_hash == content_hash(data)


def test_session_ids_are_unique(dbx) -> None:
    ids = {dbx.files_upload_session_start(b"x").session_id for _ in range(20)}
    assert len(ids) == 20


def test_start_closed_then_finish_with_empty_body(dbx) -> None:
    data = blob(1000)
    sid = start_closed(dbx, data)
    md = dbx.files_upload_session_finish(b"", cursor(sid, len(data)), commit("/closed-start.bin"))
    assert_file(md, "/closed-start.bin", data)


def test_empty_file_through_session(dbx) -> None:
    sid = dbx.files_upload_session_start(b"").session_id
    md = dbx.files_upload_session_finish(b"", cursor(sid, 0), commit("/empty.txt"))
    assert_file(md, "/empty.txt", b"")
    assert md.content_hash == EMPTY_HASH


@pytest.mark.parametrize("bad", [0, 5, 11, 1000])
def test_append_v2_wrong_offset_reports_correct_offset(dbx, bad: int) -> None:
    head = blob(10)
    sid = dbx.files_upload_session_start(head).session_id
    err = api_error(dbx.files_upload_session_append_v2, b"more", cursor(sid, bad))
    assert isinstance(err, files.UploadSessionAppendError)
    assert tag_path(err) == "incorrect_offset"
    assert correct_offset(err) == 10
    # the failed call changed nothing: appending at the reported offset works
    dbx.files_upload_session_append_v2(b"tail", cursor(sid, 10))
    md = dbx.files_upload_session_finish(b"", cursor(sid, 14), commit("/off.bin"))
    assert_file(md, "/off.bin", head + b"tail")


def test_append_v1_wrong_offset(dbx) -> None:
    sid = dbx.files_upload_session_start(b"abc").session_id
    err = api_error(dbx.files_upload_session_append, b"def", sid, 1)
    assert tag_path(err) == "incorrect_offset"
    assert correct_offset(err) == 3


def test_finish_wrong_offset_is_lookup_failed_incorrect_offset(dbx) -> None:
    data = blob(100)
    sid = dbx.files_upload_session_start(data).session_id
    err = api_error(dbx.files_upload_session_finish, b"", cursor(sid, 40), commit("/x.bin"))
    assert isinstance(err, files.UploadSessionFinishError)
    assert tag_path(err) == "lookup_failed/incorrect_offset"
    assert correct_offset(err) == 100
    # still usable
    md = dbx.files_upload_session_finish(b"!", cursor(sid, 100), commit("/x.bin"))
    assert_file(md, "/x.bin", data + b"!")


def test_append_after_close_is_closed(dbx) -> None:
    sid = dbx.files_upload_session_start(b"0123").session_id
    dbx.files_upload_session_append_v2(b"4567", cursor(sid, 4), close=True)
    err = api_error(dbx.files_upload_session_append_v2, b"89", cursor(sid, 8))
    assert tag_path(err) == "closed"
    err = api_error(dbx.files_upload_session_append, b"89", sid, 8)
    assert tag_path(err) == "closed"
    # start(close=True) seals too
    sid2 = start_closed(dbx, b"abc")
    assert tag_path(api_error(dbx.files_upload_session_append_v2, b"d", cursor(sid2, 3))) == "closed"
    # a closed session can still be finished
    md = dbx.files_upload_session_finish(b"", cursor(sid, 8), commit("/closed.bin"))
    assert_file(md, "/closed.bin", b"01234567")


def test_unknown_session_is_not_found(dbx) -> None:
    bogus = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert tag_path(api_error(dbx.files_upload_session_append_v2, b"x", cursor(bogus, 0))) == "not_found"
    assert tag_path(api_error(dbx.files_upload_session_append, b"x", bogus, 0)) == "not_found"
    err = api_error(dbx.files_upload_session_finish, b"", cursor(bogus, 0), commit("/nf.bin"))
    assert tag_path(err) == "lookup_failed/not_found"
    assert tag_path(api_error(dbx.files_get_metadata, "/nf.bin")) == "path/not_found"


def test_committed_session_is_consumed(dbx) -> None:
    data = blob(64)
    sid = start_closed(dbx, data)
    dbx.files_upload_session_finish(b"", cursor(sid, len(data)), commit("/once.bin"))
    err = api_error(dbx.files_upload_session_finish, b"", cursor(sid, len(data)), commit("/twice.bin"))
    assert tag_path(err) == "lookup_failed/not_found"
    err = api_error(dbx.files_upload_session_append_v2, b"x", cursor(sid, len(data)))
    assert tag_path(err) == "not_found"
    assert tag_path(api_error(dbx.files_get_metadata, "/twice.bin")) == "path/not_found"


def test_session_that_failed_to_commit_stays_usable(dbx) -> None:
    existing = blob(10, "existing")
    dbx.files_upload(existing, "/taken.txt")
    data = blob(20, "new")
    sid = start_closed(dbx, data)
    err = api_error(dbx.files_upload_session_finish, b"", cursor(sid, 20), commit("/taken.txt"))
    assert tag_path(err) == "path/conflict/file"
    # the file at the target is untouched
    assert download(dbx, "/taken.txt")[1] == existing
    md = dbx.files_upload_session_finish(b"", cursor(sid, 20), commit("/free.txt"))
    assert_file(md, "/free.txt", data)
    err = api_error(dbx.files_upload_session_finish, b"", cursor(sid, 20), commit("/again.txt"))
    assert tag_path(err) == "lookup_failed/not_found"


def test_session_of_another_account_is_not_found(server, dbx, sdk_for) -> None:
    other = sdk_for(server.new_account().token)
    sid = dbx.files_upload_session_start(b"mine").session_id
    assert tag_path(api_error(other.files_upload_session_append_v2, b"x", cursor(sid, 4))) == "not_found"
    err = api_error(other.files_upload_session_finish, b"", cursor(sid, 4), commit("/steal.bin"))
    assert tag_path(err) == "lookup_failed/not_found"
    # the owner is unaffected
    md = dbx.files_upload_session_finish(b"", cursor(sid, 4), commit("/mine.bin"))
    assert_file(md, "/mine.bin", b"mine")


# -- content_hash of each call -----------------------------------------------------------
def test_start_content_hash_mismatch(dbx) -> None:
    err = api_error(dbx.files_upload_session_start, b"payload", content_hash=content_hash(b"other"))
    assert isinstance(err, files.UploadSessionStartError)
    assert tag_path(err) == "content_hash_mismatch"
    # a correct explicit hash is accepted
    sid = dbx.files_upload_session_start(b"payload", content_hash=content_hash(b"payload")).session_id
    md = dbx.files_upload_session_finish(b"", cursor(sid, 7), commit("/h.txt"))
    assert_file(md, "/h.txt", b"payload")


def test_append_content_hash_mismatch_leaves_session_unchanged(dbx) -> None:
    sid = dbx.files_upload_session_start(b"head-").session_id
    err = api_error(dbx.files_upload_session_append_v2, b"bad", cursor(sid, 5),
                    content_hash=content_hash(b"good"))
    assert tag_path(err) == "content_hash_mismatch"
    # the rejected bytes were not appended: offset is still 5
    err = api_error(dbx.files_upload_session_append_v2, b"x", cursor(sid, 8))
    assert tag_path(err) == "incorrect_offset" and correct_offset(err) == 5
    dbx.files_upload_session_append_v2(b"good", cursor(sid, 5), content_hash=content_hash(b"good"))
    md = dbx.files_upload_session_finish(b"", cursor(sid, 9), commit("/ah.txt"))
    assert_file(md, "/ah.txt", b"head-good")


def test_finish_content_hash_mismatch(dbx) -> None:
    sid = dbx.files_upload_session_start(b"abc").session_id
    err = api_error(dbx.files_upload_session_finish, b"def", cursor(sid, 3), commit("/fh.txt"),
                    content_hash=content_hash(b"xyz"))
    assert isinstance(err, files.UploadSessionFinishError)
    assert tag_path(err) == "content_hash_mismatch"
    assert tag_path(api_error(dbx.files_get_metadata, "/fh.txt")) == "path/not_found"
    md = dbx.files_upload_session_finish(b"def", cursor(sid, 3), commit("/fh.txt"))
    assert_file(md, "/fh.txt", b"abcdef")


def test_upload_content_hash_mismatch_creates_nothing(dbx) -> None:
    err = api_error(dbx.files_upload, b"content", "/uh.txt", content_hash=content_hash(b"contend"))
    assert isinstance(err, files.UploadError)
    assert tag_path(err) == "content_hash_mismatch"
    assert tag_path(api_error(dbx.files_get_metadata, "/uh.txt")) == "path/not_found"
    md = dbx.files_upload(b"content", "/uh.txt", content_hash=content_hash(b"content"))
    assert_file(md, "/uh.txt", b"content")


# -- append_batch ----------------------------------------------------------------------------
def _append_entry(sid: str, offset: int, length: int,
                  close: bool = False) -> files.UploadSessionAppendBatchArgEntry:
    return files.UploadSessionAppendBatchArgEntry(cursor=cursor(sid, offset), length=length, close=close)


def test_append_batch_appends_to_each_session(dbx) -> None:
    heads = [blob(3, f"h{i}") for i in range(3)]
    sids = [dbx.files_upload_session_start(h).session_id for h in heads]
    tails = [blob(n) for n in (0, 100, 5000)]
    res = dbx.files_upload_session_append_batch(
        b"".join(tails), [_append_entry(s, 3, len(t), close=True) for s, t in zip(sids, tails, strict=True)])
    assert len(res.entries) == 3
    assert all(e.is_success() for e in res.entries)
    # closed by the batch
    assert tag_path(api_error(dbx.files_upload_session_append_v2, b"z", cursor(sids[1], 103))) == "closed"
    results = run_batch(dbx, [finish_arg(s, 3 + len(t), f"/ab/{i}.bin")
                              for i, (s, t) in enumerate(zip(sids, tails, strict=True))])
    for i, (h, t) in enumerate(zip(heads, tails, strict=True)):
        assert_file(success(results[i]), f"/ab/{i}.bin", h + t)


def test_append_batch_entries_fail_individually(dbx) -> None:
    good = dbx.files_upload_session_start(b"1234").session_id
    wrong = dbx.files_upload_session_start(b"12345678").session_id
    closed = start_closed(dbx, b"12")
    bogus = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
    res = dbx.files_upload_session_append_batch(
        b"aaaabbbbccccdddd",
        [_append_entry(good, 4, 4), _append_entry(wrong, 2, 4), _append_entry(closed, 2, 4),
         _append_entry(bogus, 0, 4)])
    e = res.entries
    assert len(e) == 4
    assert e[0].is_success()
    assert tag_path(e[1].get_failure()) == "incorrect_offset"
    assert correct_offset(e[1].get_failure()) == 8
    assert tag_path(e[2].get_failure()) == "closed"
    assert tag_path(e[3].get_failure()) == "not_found"
    md = dbx.files_upload_session_finish(b"", cursor(good, 8), commit("/abf.bin"))
    assert_file(md, "/abf.bin", b"1234aaaa")
    md = dbx.files_upload_session_finish(b"", cursor(wrong, 8), commit("/abw.bin"))
    assert_file(md, "/abw.bin", b"12345678")


def test_append_batch_length_mismatch(dbx) -> None:
    sid = dbx.files_upload_session_start(b"").session_id
    err = api_error(dbx.files_upload_session_append_batch, b"12345", [_append_entry(sid, 0, 4)])
    assert isinstance(err, files.UploadSessionAppendBatchError)
    assert tag_path(err) == "length_mismatch"
    # nothing was appended
    md = dbx.files_upload_session_finish(b"", cursor(sid, 0), commit("/lm.bin"))
    assert md.size == 0


def test_append_batch_content_hash_mismatch(dbx) -> None:
    sid = dbx.files_upload_session_start(b"").session_id
    err = api_error(dbx.files_upload_session_append_batch, b"abcd", [_append_entry(sid, 0, 4)],
                    content_hash=content_hash(b"abce"))
    assert tag_path(err) == "content_hash_mismatch"
    res = dbx.files_upload_session_append_batch(b"abcd", [_append_entry(sid, 0, 4)],
                                                content_hash=content_hash(b"abcd"))
    assert res.entries[0].is_success()
    assert_file(dbx.files_upload_session_finish(b"", cursor(sid, 4), commit("/abh.bin")), "/abh.bin", b"abcd")


# -- property: any split of the bytes over start/append/append_v2/finish gives the same file -------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(data=st.binary(min_size=0, max_size=3000),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=5),
       use_v1=st.lists(st.booleans(), min_size=6, max_size=6),
       close_early=st.booleans())
def test_any_chunking_yields_the_same_file(dbx, data: bytes, cuts: list[int], use_v1: list[bool],
                                           close_early: bool) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)] or [b""]
    # start with the first piece, append the middle ones, finish with the last (unless closing early)
    last = b"" if close_early else pieces.pop()
    sid = dbx.files_upload_session_start(pieces[0] if pieces else b"",
                                         close=close_early and len(pieces) <= 1).session_id
    off = len(pieces[0]) if pieces else 0
    for i, p in enumerate(pieces[1:], start=1):
        closing = close_early and i == len(pieces) - 1
        if use_v1[i % 6] and not closing:
            dbx.files_upload_session_append(p, sid, off)
        else:
            dbx.files_upload_session_append_v2(p, cursor(sid, off), close=closing)
        off += len(p)
    path = f"/prop/{content_hash(data)[:16]}-{len(cuts)}-{int(close_early)}.bin"
    md = dbx.files_upload_session_finish(last, cursor(sid, off), commit(path, files.WriteMode.overwrite))
    assert_file(md, path, data)


def test_racing_appends_at_one_offset_exactly_one_wins(dbx, per_thread_dbx) -> None:
    head = blob(100, "race")
    sid = dbx.files_upload_session_start(head).session_id
    n = 8
    pieces = [blob(1024, f"p{i}") for i in range(n)]
    barrier = threading.Barrier(n)

    def attempt(i: int) -> str | int:
        c = per_thread_dbx()
        barrier.wait()
        try:
            c.files_upload_session_append_v2(pieces[i], cursor(sid, 100))
            return "ok"
        except ApiError as e:
            assert tag_path(e.error) == "incorrect_offset", tag_path(e.error)
            return correct_offset(e.error) or -1

    with ThreadPoolExecutor(n) as pool:
        outcomes = list(pool.map(attempt, range(n)))
    winners = [i for i, o in enumerate(outcomes) if o == "ok"]
    assert len(winners) == 1, outcomes
    assert all(o == 1124 for o in outcomes if o != "ok"), outcomes
    md = dbx.files_upload_session_finish(b"", cursor(sid, 1124), commit("/race.bin"))
    assert_file(md, "/race.bin", head + pieces[winners[0]])


def test_racing_finishes_of_one_session_commit_once(dbx, per_thread_dbx) -> None:
    data = blob(500, "once")
    sid = start_closed(dbx, data)
    n = 6
    barrier = threading.Barrier(n)

    def attempt(i: int) -> str:
        c = per_thread_dbx()
        barrier.wait()
        try:
            c.files_upload_session_finish(b"", cursor(sid, 500), commit(f"/once/{i}.bin"))
            return "ok"
        except ApiError as e:
            return tag_path(e.error)

    with ThreadPoolExecutor(n) as pool:
        outcomes = list(pool.map(attempt, range(n)))
    assert outcomes.count("ok") == 1, outcomes
    assert all(o in ("ok", "lookup_failed/not_found") for o in outcomes), outcomes
    (only,) = list_all(dbx, "/once")
    assert only.name == f"{outcomes.index('ok')}.bin" and only.content_hash == content_hash(data)
