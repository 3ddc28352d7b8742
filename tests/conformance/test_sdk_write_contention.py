"""Write contention (#4): commits into one namespace are serialized server-side, and a commit that waits
longer than `--write-wait` for its namespace is refused with Dropbox's too_many_write_operations: a 429
for a whole call (which the official SDK backs off from and retries), a per-entry failure inside batch
results.  Nothing refused is applied, so after retries every entry exists exactly once."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dropbox
import pytest
import requests
from dropbox import files
from dropbox.exceptions import RateLimitError
from harness import LocalServer, local_session, running_server

from localbox.testing import AdminClient

pytestmark = [pytest.mark.conformance, pytest.mark.filterwarnings("ignore:upload_session/finish_batch is deprecated")]
ADMIN = "admin-" + secrets.token_hex(8)
HOLD = 3.0  # seconds a slow_commit holds its namespace; --write-wait is 0.5 s


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    args = ["--memory", "--admin-token", ADMIN, "--write-wait", "0.5s"]
    with running_server(tmp_path_factory.mktemp("contention") / "data", args) as s:
        yield s


@pytest.fixture()
def admin(srv: LocalServer) -> Iterator[AdminClient]:
    client = AdminClient(srv.url, ADMIN)
    yield client
    client.clear_faults()


@pytest.fixture()
def user(admin: AdminClient) -> dict[str, Any]:
    return admin.add_account(f"w-{secrets.token_hex(4)}@example.com")


def sdk(srv: LocalServer, user: dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("max_retries_on_error", 0)
    kwargs.setdefault("max_retries_on_rate_limit", 0)
    return dropbox.Dropbox(user["tokens"][0], session=local_session(srv.url), **kwargs)


class Busy:
    """A slow commit (an injected slow_commit) holding the user's namespace in a background thread."""

    def __init__(self, srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
        path = f"/busy-{secrets.token_hex(3)}.txt"
        admin.add_fault("slow_commit", route="files/upload", path=path, times=1, seconds=HOLD)
        self.dbx = sdk(srv, user)
        self.path = path
        self.thread = threading.Thread(target=self.dbx.files_upload, args=(b"busy", path))

    def __enter__(self) -> Busy:
        self.thread.start()
        time.sleep(0.5)  # the slow commit has its lock by now
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join()
        assert self.dbx.files_get_metadata(self.path).size == 4  # the slow commit itself went through


def revisions(dbx: Any, path: str) -> int:
    return len(dbx.files_list_revisions(path).entries)


def names(dbx: Any, folder: str) -> list[str]:
    listing = dbx.files_list_folder(folder, limit=2000)
    found = [e.name for e in listing.entries]
    while listing.has_more:
        listing = dbx.files_list_folder_continue(listing.cursor)
        found += [e.name for e in listing.entries]
    return found


def wait_job(check: Any, job_id: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        status = check(job_id)
        if not status.is_in_progress() or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_whole_call_gets_429_too_many_write_operations_and_sdk_backoff_succeeds(
        srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    with Busy(srv, admin, user) as busy:
        dbx = sdk(srv, user)
        started = time.monotonic()
        with pytest.raises(RateLimitError) as e:
            dbx.files_upload(b"one", "/one.txt")
        waited = time.monotonic() - started
        assert e.value.error.reason.is_too_many_write_operations() and e.value.backoff == 1
        assert waited > 0.4 and busy.thread.is_alive()  # refused once the bound (0.5 s) ran out, not after it
        with pytest.raises(RateLimitError):
            dbx.files_create_folder_v2("/folder")
        # The SDK's default: back off by retry_after and retry until the namespace is free.
        patient = sdk(srv, user, max_retries_on_rate_limit=None)
        patient.files_upload(b"two", "/two.txt")
    assert revisions(patient, "/two.txt") == 1
    for path in ("/one.txt", "/folder"):
        with pytest.raises(dropbox.exceptions.ApiError):
            patient.files_get_metadata(path)  # refused calls wrote nothing
    log = [r for r in admin.requests(limit=100_000) if r["account"] == user["email"] and r["status"] == 429]
    assert {r["error"] for r in log} == {"too_many_write_operations"} and len(log) >= 3


def test_other_namespaces_are_not_held_up(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    other = admin.add_account(f"o-{secrets.token_hex(4)}@example.com")
    with Busy(srv, admin, user) as busy:
        sdk(srv, other).files_upload(b"free", "/free.txt")
        assert busy.thread.is_alive()  # done while the user's namespace is still held


def test_finish_batch_v2_entries_fail_per_entry_and_retry_exactly_once(
        srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    ids = [str(dbx.files_upload_session_start(bytes([i]) * 3, close=True).session_id) for i in range(5)]
    args = [files.UploadSessionFinishArg(files.UploadSessionCursor(s, 3), files.CommitInfo(f"/b/{i}.bin"))
            for i, s in enumerate(ids)]
    with Busy(srv, admin, user):
        entries = dbx.files_upload_session_finish_batch_v2(args).entries
    assert all(e.is_failure() and e.get_failure().is_too_many_write_operations() for e in entries)
    retried = dbx.files_upload_session_finish_batch_v2(args).entries  # the sessions stayed usable
    assert [e.get_success().path_display for e in retried] == [f"/b/{i}.bin" for i in range(5)]
    assert [revisions(dbx, f"/b/{i}.bin") for i in range(5)] == [1] * 5
    listed = dbx.files_list_folder("/b").entries
    assert sorted(e.name for e in listed) == [f"{i}.bin" for i in range(5)]


def test_finish_batch_job_entries_fail_per_entry(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    ids = [str(dbx.files_upload_session_start(b"x", close=True).session_id) for _ in range(3)]
    args = [files.UploadSessionFinishArg(files.UploadSessionCursor(s, 1), files.CommitInfo(f"/j/{i}"))
            for i, s in enumerate(ids)]
    with Busy(srv, admin, user):
        job = dbx.files_upload_session_finish_batch(args).get_async_job_id()
        status = wait_job(dbx.files_upload_session_finish_batch_check, job)
    entries = status.get_complete().entries
    assert [e.get_failure().is_too_many_write_operations() for e in entries] == [True] * 3
    job = dbx.files_upload_session_finish_batch(args).get_async_job_id()
    assert all(e.is_success() for e in wait_job(dbx.files_upload_session_finish_batch_check, job)
               .get_complete().entries)


def test_tree_batches_report_too_many_write_operations_in_their_own_unions(
        srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    dbx = sdk(srv, user)
    dbx.files_upload(b"m", "/m.txt")
    dbx.files_upload(b"d", "/d.txt")
    with Busy(srv, admin, user):
        folders = dbx.files_create_folder_batch(["/f1", "/f2"], force_async=True).get_async_job_id()
        deletes = dbx.files_delete_batch([files.DeleteArg("/d.txt")]).get_async_job_id()
        moves = dbx.files_move_batch_v2([files.RelocationPath("/m.txt", "/moved.txt")]).get_async_job_id()
        f = wait_job(dbx.files_create_folder_batch_check, folders)
        d = wait_job(dbx.files_delete_batch_check, deletes)
        m = wait_job(dbx.files_move_batch_check_v2, moves)
    assert all(e.get_failure().get_path().is_too_many_write_operations() for e in f.get_complete().entries)
    assert d.get_complete().entries[0].get_failure().is_too_many_write_operations()
    assert m.get_complete().entries[0].get_failure().is_too_many_write_operations()
    # Nothing of the refused batches was applied.
    assert {e.name for e in dbx.files_list_folder("").entries} >= {"m.txt", "d.txt"}
    assert not {"f1", "f2", "moved.txt"} & {e.name for e in dbx.files_list_folder("").entries}


def test_saturated_namespace_many_writers_nothing_lost_or_doubled(tmp_path: Any) -> None:
    """No injected fault, and --write-wait 0: two 1000-entry finish_batch_v2 commits saturate one namespace
    while four writers upload into it without pause, with the SDK's default retry.  Refused calls and
    entries are retried, and every file that was acknowledged is there exactly once."""
    with running_server(tmp_path / "data", ["--memory", "--admin-token", ADMIN, "--write-wait", "0s"]) as s:
        admin = AdminClient(s.url, ADMIN)
        user = admin.add_account("sat@example.com")
        dbx = sdk(s, user, max_retries_on_rate_limit=None)
        batch_done = threading.Event()
        written: list[str] = []
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                w = sdk(s, user, max_retries_on_rate_limit=None)
                k = 0
                while not batch_done.is_set() or k < 10:
                    w.files_upload(f"{n}-{k}".encode(), f"/small/{n}-{k}.txt")
                    written.append(f"{n}-{k}.txt")
                    k += 1
            except BaseException as e:  # reported below
                errors.append(e)

        with ThreadPoolExecutor(4) as pool:  # closed one-byte sessions, 1000 per batch, made beforehand
            ids = list(pool.map(lambda _: dbx.files_upload_session_start(b"b", close=True).session_id, range(2000)))
        batches = [[files.UploadSessionFinishArg(files.UploadSessionCursor(sid, 1),
                                                 files.CommitInfo(f"/big/{r}-{i:04}"))
                    for i, sid in enumerate(ids[r * 1000:(r + 1) * 1000])] for r in range(2)]
        since = admin.call("GET", "/admin/requests?limit=1")["last"]
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        committed: list[str] = []
        for pending in batches:
            while pending:
                entries = dbx.files_upload_session_finish_batch_v2(pending).entries
                committed += [e.get_success().name for e in entries if e.is_success()]
                assert all(e.get_failure().is_too_many_write_operations() for e in entries if e.is_failure())
                pending = [c for c, e in zip(pending, entries, strict=True) if e.is_failure()]
        batch_done.set()
        for t in threads:
            t.join()
        assert not errors
        refused = [r for r in admin.requests(since=since, limit=100_000) if r["status"] == 429]
        assert refused and {r["error"] for r in refused} == {"too_many_write_operations"}
        big = names(dbx, "/big")
        assert sorted(big) == sorted(committed) == sorted(f"{r}-{i:04}" for r in range(2) for i in range(1000))
        small = names(dbx, "/small")
        assert sorted(small) == sorted(written) and len(set(written)) == len(written)
        for name in small[:10]:
            assert revisions(dbx, f"/small/{name}") == 1


def test_the_429_on_the_wire(srv: LocalServer, admin: AdminClient, user: dict[str, Any]) -> None:
    with Busy(srv, admin, user):
        r = requests.post(f"{srv.url}/2/files/create_folder_v2", json={"path": "/wire"},
                          headers={"Authorization": f"Bearer {user['tokens'][0]}"}, timeout=30)
    assert r.status_code == 429 and r.headers["Content-Type"] == "application/json"
    assert r.headers["Retry-After"] == "1"
    assert r.json() == {"error_summary": "too_many_write_operations/",
                        "error": {"reason": {".tag": "too_many_write_operations"}, "retry_after": 1}}
