"""Write contention across nodes (#4): two `localbox serve` nodes on one PostgreSQL database.  A slow
commit on node A holds a namespace (its advisory lock, for the whole commit transaction); writes into
that namespace through node B wait at most `--write-wait` and are then refused with
too_many_write_operations (429 for a whole call, a per-entry failure inside batch results), having
written nothing, while other namespaces go ahead.  Retried, every entry exists exactly once.  And a
rate-limited token's bucket is shared: two nodes together admit its rate, not twice it."""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import dropbox
import pg
import pytest
from dropbox import files
from dropbox.exceptions import ApiError, RateLimitError
from harness import LocalServer, local_session

from localbox.testing import AdminClient

pytestmark = [pytest.mark.reliability, pytest.mark.filterwarnings("ignore:upload_session/finish_batch is deprecated")]
ADMIN = "lbadm-" + secrets.token_hex(8)
HOLD = 3.0  # seconds node A's slow_commit holds the namespace; --write-wait is 0.5 s


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalServer]]:
    with pg.database() as url:
        root = tmp_path_factory.mktemp("contention-nodes")
        args = ["--database-url", url, "--blob-url", f"file://{root / 'blobs'}", "--admin-token=" + ADMIN,
                "--write-wait", "0.5s"]
        both = [LocalServer(root / f"node{i}", args) for i in range(2)]
        try:
            for node in both:
                node.start()
            yield both
        finally:
            for node in both:
                node.stop()


def sdk(node: LocalServer, token: str, **kwargs: Any) -> Any:
    kwargs.setdefault("max_retries_on_error", 0)
    kwargs.setdefault("max_retries_on_rate_limit", 0)
    return dropbox.Dropbox(token, session=local_session(node.url), **kwargs)


class BusyOnA:
    """An upload through node A that holds the account's namespace for HOLD seconds (slow_commit)."""

    def __init__(self, a: LocalServer, token: str) -> None:
        self.admin = AdminClient(a.url, ADMIN)
        self.path = f"/busy-{secrets.token_hex(3)}.txt"
        self.admin.add_fault("slow_commit", route="files/upload", path=self.path, times=1, seconds=HOLD)
        self.dbx = sdk(a, token)
        self.thread = threading.Thread(target=self.dbx.files_upload, args=(b"busy", self.path))

    def __enter__(self) -> BusyOnA:
        self.thread.start()
        time.sleep(0.7)  # node A holds the namespace's lock by now
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join()
        self.admin.clear_faults()
        assert self.dbx.files_get_metadata(self.path).size == 4


def revisions(dbx: Any, path: str) -> int:
    return len(dbx.files_list_revisions(path).entries)


def test_a_node_waiting_on_another_nodes_namespace_gets_429_after_the_bound(nodes: list[LocalServer]) -> None:
    a, b = nodes
    admin = AdminClient(a.url, ADMIN)
    token = admin.add_account(f"n-{secrets.token_hex(4)}@example.com")["tokens"][0]
    other = admin.add_account(f"o-{secrets.token_hex(4)}@example.com")["tokens"][0]
    on_b = sdk(b, token)
    with BusyOnA(a, token) as busy:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as e:
            on_b.files_upload(b"one", "/one.txt")
        waited = time.monotonic() - started
        assert e.value.error.reason.is_too_many_write_operations() and e.value.backoff == 1
        assert 0.4 < waited < HOLD - 0.7 and busy.thread.is_alive()  # refused at the bound, not after A
        with pytest.raises(RateLimitError):
            on_b.files_create_folder_v2("/folder")
        sdk(b, other).files_upload(b"free", "/free.txt")  # another namespace is not held up
        assert busy.thread.is_alive()
        # The SDK's default backs off and retries until node A lets go.
        sdk(b, token, max_retries_on_rate_limit=None).files_upload(b"two", "/two.txt")
    assert revisions(on_b, "/two.txt") == 1
    for path in ("/one.txt", "/folder"):
        with pytest.raises(ApiError):
            on_b.files_get_metadata(path)  # refused calls wrote nothing


def test_batch_entries_into_a_namespace_held_by_another_node_fail_per_entry(nodes: list[LocalServer]) -> None:
    a, b = nodes
    admin = AdminClient(a.url, ADMIN)
    token = admin.add_account(f"f-{secrets.token_hex(4)}@example.com")["tokens"][0]
    on_b = sdk(b, token)
    ids = [str(on_b.files_upload_session_start(bytes([i]) * 3, close=True).session_id) for i in range(4)]
    args = [files.UploadSessionFinishArg(files.UploadSessionCursor(s, 3), files.CommitInfo(f"/b/{i}.bin"))
            for i, s in enumerate(ids)]
    with BusyOnA(a, token):
        entries = on_b.files_upload_session_finish_batch_v2(args).entries
        assert all(e.is_failure() and e.get_failure().is_too_many_write_operations() for e in entries)
        job = on_b.files_upload_session_finish_batch(args).get_async_job_id()
        deadline = time.monotonic() + 30
        status = on_b.files_upload_session_finish_batch_check(job)
        while status.is_in_progress() and time.monotonic() < deadline:
            time.sleep(0.1)
            status = on_b.files_upload_session_finish_batch_check(job)
        assert all(e.get_failure().is_too_many_write_operations() for e in status.get_complete().entries)
    retried = on_b.files_upload_session_finish_batch_v2(args).entries  # the sessions stayed usable
    assert [e.get_success().path_display for e in retried] == [f"/b/{i}.bin" for i in range(4)]
    assert [revisions(on_b, f"/b/{i}.bin") for i in range(4)] == [1] * 4
    assert sorted(e.name for e in sdk(a, token).files_list_folder("/b").entries) == [f"{i}.bin" for i in range(4)]


def test_a_tokens_rate_limit_is_shared_by_the_nodes(nodes: list[LocalServer]) -> None:
    a, b = nodes
    email = f"r-{secrets.token_hex(4)}@example.com"
    AdminClient(a.url, ADMIN).add_account(email)
    token = a.cli("token", "create", email, "--rate-limit", "2/s").strip().splitlines()[-1]
    clients = [sdk(a, token), sdk(b, token)]
    admitted = refused = 0
    started = time.monotonic()
    for i in range(10):  # alternating nodes, as fast as they answer
        try:
            clients[i % 2].users_get_current_account()
            admitted += 1
        except RateLimitError as e:
            assert e.error.reason.is_too_many_requests() and e.backoff >= 1
            refused += 1
    elapsed = time.monotonic() - started
    # A burst of 2 plus what refilled meanwhile; buckets per node would have let through at least 4.
    assert 2 <= admitted <= 2 + math.ceil(2 * elapsed) and refused == 10 - admitted, (admitted, elapsed)
    sdk(b, token, max_retries_on_rate_limit=None).users_get_current_account()  # the SDK backs off
