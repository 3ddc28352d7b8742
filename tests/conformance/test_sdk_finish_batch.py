"""finish_batch (async + /check), finish_batch_v2 (sync): per-entry results, ordering, serial commit of
concurrent batches of one account, job lifetime across restarts."""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from dropbox import files
from harness import LocalServer, make_sdk
from sdk_helpers import (
    BLOCK,
    api_error,
    assert_file,
    blob,
    content_hash,
    cursor,
    download,
    failure_tags,
    files_only,
    finish_arg,
    launch_batch,
    list_all,
    run_batch,
    start_closed,
    success,
    tag_path,
    upload_chunked,
    wait_job,
)

pytestmark = pytest.mark.conformance

ROUTES = ["v1", "v2"]


def test_finish_batch_always_async_and_check_is_repeatable(dbx) -> None:
    datas = [blob(100 + i, f"j{i}") for i in range(3)]
    sids = [start_closed(dbx, d) for d in datas]
    job = launch_batch(dbx, [finish_arg(s, len(d), f"/job/{i}.txt")
                             for i, (s, d) in enumerate(zip(sids, datas, strict=True))])
    first = wait_job(dbx, job)
    assert len(first) == 3
    for i, d in enumerate(datas):
        assert_file(success(first[i]), f"/job/{i}.txt", d)
    # a finished job stays checkable, with the same answer
    for _ in range(3):
        again = wait_job(dbx, job, timeout=5)
        assert [(success(e).id, success(e).rev) for e in again] == [
            (success(e).id, success(e).rev) for e in first]


def test_finish_batch_even_a_tiny_batch_returns_a_job(dbx) -> None:
    sid = start_closed(dbx, b"one")
    launch = dbx.files_upload_session_finish_batch([finish_arg(sid, 3, "/tiny-job.txt")])
    assert launch.is_async_job_id() and not launch.is_complete()


def test_finish_batch_empty_entries(dbx) -> None:
    assert run_batch(dbx, [], route="v1") == []
    assert run_batch(dbx, [], route="v2") == []


def test_check_unknown_job_id(dbx) -> None:
    for bogus in ("dbjid:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nope"):
        err = api_error(dbx.files_upload_session_finish_batch_check, bogus)
        assert tag_path(err) == "invalid_async_job_id"


def test_check_job_of_another_account_is_invalid(server, dbx, sdk_for) -> None:
    sid = start_closed(dbx, b"private")
    job = launch_batch(dbx, [finish_arg(sid, 7, "/private.txt")])
    wait_job(dbx, job)
    other = sdk_for(server.new_account().token)
    assert tag_path(api_error(other.files_upload_session_finish_batch_check, job)) == "invalid_async_job_id"


@pytest.mark.parametrize("route", ROUTES)
def test_batch_entries_succeed_or_fail_individually_in_entry_order(dbx, route: str) -> None:
    dbx.files_upload(b"occupied", "/mix/taken.txt")
    dbx.files_upload(b"child", "/mix/folder/child.txt")
    good1, good2 = blob(10, "g1"), blob(11, "g2")
    s_good1 = start_closed(dbx, good1)
    s_open = dbx.files_upload_session_start(b"open").session_id  # never closed
    s_conflict = start_closed(dbx, b"conflicting")
    s_folder = start_closed(dbx, b"f")
    s_offset = start_closed(dbx, b"12345")
    s_consumed = start_closed(dbx, b"used")
    dbx.files_upload_session_finish(b"", cursor(s_consumed, 4), files.CommitInfo(path="/mix/used.txt"))
    s_good2 = start_closed(dbx, good2)
    entries = [
        finish_arg(s_good1, 10, "/mix/a.txt"),
        finish_arg(s_open, 4, "/mix/open.txt"),
        finish_arg("CCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", 0, "/mix/unknown.txt"),
        finish_arg(s_conflict, 11, "/mix/taken.txt"),
        finish_arg(s_folder, 1, "/mix/folder"),
        finish_arg(s_offset, 3, "/mix/offset.txt"),
        finish_arg(s_consumed, 4, "/mix/used-again.txt"),
        finish_arg(s_good2, 11, "/mix/b.txt"),
        finish_arg(s_conflict, 11, "/mix/taken-free.txt"),  # same session, commit fails above -> reusable
    ]
    r = run_batch(dbx, entries, route=route)
    assert len(r) == len(entries)
    assert_file(success(r[0]), "/mix/a.txt", good1)
    assert failure_tags(r[1]) == "lookup_failed/not_closed"
    assert failure_tags(r[2]) == "lookup_failed/not_found"
    assert failure_tags(r[3]) == "path/conflict/file"
    assert failure_tags(r[4]) == "path/conflict/folder"
    assert failure_tags(r[5]) == "lookup_failed/incorrect_offset"
    off_err = r[5].get_failure().get_lookup_failed().get_incorrect_offset()
    assert off_err.correct_offset == 5
    assert failure_tags(r[6]) == "lookup_failed/not_found"
    assert_file(success(r[7]), "/mix/b.txt", good2)
    assert_file(success(r[8]), "/mix/taken-free.txt", b"conflicting")
    assert download(dbx, "/mix/taken.txt")[1] == b"occupied"
    names = {m.name for m in list_all(dbx, "/mix")}
    assert names == {"taken.txt", "folder", "used.txt", "a.txt", "b.txt", "taken-free.txt"}
    # the never-closed session was not consumed: close it and commit it
    dbx.files_upload_session_append_v2(b"", cursor(s_open, 4), close=True)
    (ok,) = run_batch(dbx, [finish_arg(s_open, 4, "/mix/open.txt")], route=route)
    assert_file(success(ok), "/mix/open.txt", b"open")


@pytest.mark.parametrize("route", ROUTES)
def test_batch_commits_consume_sessions(dbx, route: str) -> None:
    sid = start_closed(dbx, b"x")
    assert success(run_batch(dbx, [finish_arg(sid, 1, "/consume1.txt")], route=route)[0])
    (again,) = run_batch(dbx, [finish_arg(sid, 1, "/consume2.txt")], route=route)
    assert failure_tags(again) == "lookup_failed/not_found"


@pytest.mark.parametrize("route", ROUTES)
def test_same_session_twice_in_one_batch_commits_once(dbx, route: str) -> None:
    data = blob(33, "twice")
    sid = start_closed(dbx, data)
    r = run_batch(dbx, [finish_arg(sid, 33, "/twice/a.bin"), finish_arg(sid, 33, "/twice/b.bin")], route=route)
    assert_file(success(r[0]), "/twice/a.bin", data)
    assert failure_tags(r[1]) == "lookup_failed/not_found"
    assert [m.name for m in list_all(dbx, "/twice")] == ["a.bin"]


def test_thousand_parallel_uploads_then_one_finish_batch(dbx, per_thread_dbx) -> None:
    n = 1000
    datas = [b"" if i == 0 else blob(1 + (i * 37) % 3000, f"file-{i}|") for i in range(n)]
    paths = [(f"/bulk/nested/deep/N{i:04d}.bin" if i % 10 == 0 else f"/bulk/F{i:04d}.bin") for i in range(n)]

    def upload(i: int) -> str:
        c = per_thread_dbx()
        d = datas[i]
        if i % 7 == 0 and len(d) > 2:  # some multi-call sessions
            return upload_chunked(c, d, chunk=max(1, len(d) // 3))
        return start_closed(c, d)

    with ThreadPoolExecutor(16) as pool:
        sids = list(pool.map(upload, range(n)))
    assert len(set(sids)) == n
    results = run_batch(dbx, [finish_arg(sids[i], len(datas[i]), paths[i]) for i in range(n)], route="v1",
                        timeout=240)
    assert len(results) == n
    for i in range(n):
        assert_file(success(results[i]), paths[i], datas[i])
    assert len({success(e).id for e in results}) == n
    listed = files_only(list_all(dbx, "/bulk", recursive=True, limit=250))
    assert len(listed) == n
    by_lower = {m.path_lower: m for m in listed}
    assert set(by_lower) == {p.lower() for p in paths}
    for i in range(0, n, 97):
        assert by_lower[paths[i].lower()].content_hash == content_hash(datas[i])
        assert by_lower[paths[i].lower()].path_display == paths[i]
    # spot-check content
    for i in (0, 1, 500, 999):
        assert download(dbx, paths[i])[1] == datas[i]


def test_finish_batch_v2_thousand_entries(dbx, per_thread_dbx) -> None:
    n = 1000
    datas = [blob(16, f"v2-{i}|") for i in range(n)]
    with ThreadPoolExecutor(16) as pool:
        sids = list(pool.map(lambda d: start_closed(per_thread_dbx(), d), datas))
    results = run_batch(dbx, [finish_arg(s, 16, f"/bulk2/{i}.txt") for i, s in enumerate(sids)], route="v2")
    assert len(results) == n
    for i in range(n):
        assert_file(success(results[i]), f"/bulk2/{i}.txt", datas[i])


def test_batches_launched_back_to_back_commit_in_arrival_order(dbx) -> None:
    a, b = blob(10, "first"), blob(10, "second")
    sa, sb = start_closed(dbx, a), start_closed(dbx, b)
    filler = [start_closed(dbx, blob(8, f"fill{i}")) for i in range(50)]
    job1 = launch_batch(dbx, [*(finish_arg(s, 8, f"/order/fill{i}") for i, s in enumerate(filler)),
                              finish_arg(sa, 10, "/order/target.txt")])
    job2 = launch_batch(dbx, [finish_arg(sb, 10, "/order/target.txt")])
    r2 = wait_job(dbx, job2)
    r1 = wait_job(dbx, job1)
    assert_file(success(r1[-1]), "/order/target.txt", a)
    assert failure_tags(r2[0]) == "path/conflict/file"
    assert download(dbx, "/order/target.txt")[1] == a


RENAMED = re.compile(r"^(?P<stem>.*?)(?: \((?P<n>\d+)\))?(?P<ext>\.txt)$")


@pytest.mark.parametrize("route", ["v1", "v2", "mixed"])
def test_concurrent_batches_of_one_account_commit_serially(dbx, per_thread_dbx, route: str) -> None:
    n_batches, per_shared, n_unique = 6, 3, 6
    shared = ["/race/Shared-A.txt", "/race/shared-b.txt"]
    plan: list[list[tuple[str, bytes]]] = []  # per batch: (path, content)
    for b in range(n_batches):
        entries: list[tuple[str, bytes]] = []
        for k in range(per_shared):
            for s in shared:
                entries.append((s, blob(24, f"b{b}k{k}{s}")))
            for u in range(n_unique // per_shared):
                entries.append((f"/race/u-{b}-{k}-{u}.txt", blob(24, f"u{b}{k}{u}")))
        plan.append(entries)

    def prep(batch):
        c = per_thread_dbx()
        return [finish_arg(start_closed(c, d), len(d), p, autorename=True) for p, d in batch]

    with ThreadPoolExecutor(n_batches) as pool:
        args = list(pool.map(prep, plan))

    barrier = threading.Barrier(n_batches)

    def go(b: int):
        c = per_thread_dbx()
        r = "v1" if (route == "v1" or (route == "mixed" and b % 2 == 0)) else "v2"
        barrier.wait()
        return run_batch(c, args[b], route=r)

    with ThreadPoolExecutor(n_batches) as pool:
        results = list(pool.map(go, range(n_batches)))

    # 1. every entry committed exactly once, with its own content
    all_md = []
    for b in range(n_batches):
        assert len(results[b]) == len(plan[b])
        for (path, data), entry in zip(plan[b], results[b], strict=True):
            md = success(entry)
            assert md.size == len(data) and md.content_hash == content_hash(data)
            all_md.append((b, path, md))
    assert len({md.id for _, _, md in all_md}) == len(all_md), "two entries landed on the same file"
    listed = files_only(list_all(dbx, "/race"))
    assert len(listed) == len(all_md)
    listed_hash = {m.path_lower: m.content_hash for m in listed}
    for _, _, md in all_md:
        assert listed_hash[md.path_lower] == md.content_hash
    # 2. unique paths kept their names
    for _b, path, md in all_md:
        if path not in shared:
            assert md.path_display == path
    # 3. each shared path: numbers 0..N-1 without gaps (first free number), increasing in entry order
    #    within a batch, and contiguous per batch (batches did not interleave), in ONE batch order
    #    for all shared paths
    numbers: dict[str, dict[int, list[int]]] = {s: defaultdict(list) for s in shared}
    for b, path, md in all_md:
        if path in shared:
            m = RENAMED.match(md.name)
            assert m and m.group("stem") + m.group("ext") == path.rsplit("/", 1)[1], md.name
            numbers[path][b].append(int(m.group("n") or 0))
    assert_serial_autorename(numbers, n_batches, per_shared)


def assert_serial_autorename(numbers: dict[str, dict[int, list[int]]], n_batches: int, per_shared: int) -> None:
    """numbers[path][batch] = the autorename numbers (0 = no suffix) that batch's entries for `path` got,
    in entry order. Serial batches in one arrival order give each batch a contiguous block, the same
    batch order for every path, and numbers 0..N-1 without gaps."""
    orders = []
    for path, per_batch in numbers.items():
        flat = sorted(x for v in per_batch.values() for x in v)
        assert flat == list(range(n_batches * per_shared)), (path, flat)
        order = sorted(per_batch, key=lambda b: per_batch[b][0])
        for rank, b in enumerate(order):
            assert per_batch[b] == list(range(rank * per_shared, (rank + 1) * per_shared)), (
                f"{path}: batch {b} got {per_batch[b]}: batches were interleaved, not serial")
        orders.append(order)
    assert all(o == orders[0] for o in orders), f"shared paths saw different batch orders: {orders}"


def test_serial_checker_rejects_non_serial_outcomes() -> None:
    # the checker above must be able to fail: interleaved, gapped, and inconsistently ordered outcomes
    ok = {"/a": {0: [0, 1], 1: [2, 3]}, "/b": {0: [0, 1], 1: [2, 3]}}
    assert_serial_autorename(ok, 2, 2)
    for bad in ({"/a": {0: [0, 2], 1: [1, 3]}},                               # interleaved
                {"/a": {0: [0, 1], 1: [3, 4]}},                               # gap: not the first free number
                {"/a": {0: [1, 0], 1: [2, 3]}},                               # out of entry order
                {"/a": {0: [0, 1], 1: [2, 3]}, "/b": {1: [0, 1], 0: [2, 3]}}):  # two orders
        with pytest.raises(AssertionError):
            assert_serial_autorename(bad, 2, 2)


def test_jobs_and_sessions_survive_restart(tmp_path) -> None:
    srv = LocalServer(tmp_path / "data")
    srv.start()
    try:
        acct = srv.new_account()
        dbx = make_sdk(srv, acct.token)
        datas = [blob(50 + i, f"r{i}") for i in range(20)]
        sids = [start_closed(dbx, d) for d in datas]
        job = launch_batch(dbx, [finish_arg(s, len(d), f"/restart/{i}.txt")
                                 for i, (s, d) in enumerate(zip(sids, datas, strict=True))])
        before = wait_job(dbx, job)
        # a second job launched right before a graceful restart must not be lost either
        more = [blob(30, f"m{i}") for i in range(200)]
        msids = [start_closed(dbx, d) for d in more]
        job2 = launch_batch(dbx, [finish_arg(s, 30, f"/restart/m{i}.txt") for i, s in enumerate(msids)])
        # open sessions too: Dropbox keeps a session usable for 7 days, a restart must not drop it
        seq_head, seq_tail = blob(1000, "seq"), blob(10, "tail")
        seq = dbx.files_upload_session_start(seq_head).session_id
        conc_data = blob(BLOCK + 6, "conc")
        conc = dbx.files_upload_session_start(b"", session_type=files.UploadSessionType.concurrent).session_id
        dbx.files_upload_session_append_v2(conc_data[BLOCK:], cursor(conc, BLOCK), close=True)
        srv.restart()
        dbx = make_sdk(srv, acct.token)
        dbx.files_upload_session_append_v2(seq_tail, cursor(seq, 1000), close=True)
        assert_file(dbx.files_upload_session_finish(b"", cursor(seq, 1010), files.CommitInfo(path="/restart/seq")),
                    "/restart/seq", seq_head + seq_tail)
        dbx.files_upload_session_append_v2(conc_data[:BLOCK], cursor(conc, 0))
        (rc,) = run_batch(dbx, [finish_arg(conc, len(conc_data), "/restart/conc")])
        assert_file(success(rc), "/restart/conc", conc_data)
        after = wait_job(dbx, job)
        assert [(success(e).id, success(e).rev, success(e).content_hash) for e in after] == [
            (success(e).id, success(e).rev, success(e).content_hash) for e in before]
        for i, d in enumerate(datas):
            assert_file(success(after[i]), f"/restart/{i}.txt", d)
            assert download(dbx, f"/restart/{i}.txt")[1] == d
        r2 = wait_job(dbx, job2)
        assert len(r2) == 200
        for i, d in enumerate(more):
            assert_file(success(r2[i]), f"/restart/m{i}.txt", d)
        # even a hard kill keeps completed jobs and committed files
        srv.restart(kill=True)
        dbx = make_sdk(srv, acct.token)
        assert [success(e).rev for e in wait_job(dbx, job)] == [success(e).rev for e in before]
        assert len(files_only(list_all(dbx, "/restart"))) == 222
        assert tag_path(api_error(dbx.files_upload_session_finish_batch_check, "no-such-job")) == (
            "invalid_async_job_id")
    finally:
        srv.stop()
