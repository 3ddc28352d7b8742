"""Three `localbox serve` nodes on one PostgreSQL database and one blob store (a shared file:// folder,
then moto's S3 server; LOCALBOX_TEST_BLOB_URL overrides the folder), the official SDK spreading its calls round-robin
over them like a load balancer without sticky sessions.  One node is killed with SIGKILL while batch
jobs run: every job completes, every entry is committed exactly once (#5)."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import dropbox
import httpx
import pg
import pytest
import requests
from dropbox import files
from harness import LocalServer, make_sdk
from requests.adapters import HTTPAdapter

pytestmark = [pytest.mark.reliability]


class RoundRobin(HTTPAdapter):
    """Sends each request to the next live node, as a load balancer would: a node that refuses the
    connection (dead) is skipped for the rest of the test."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = list(urls)
        self.dead: set[str] = set()
        self.lock = threading.Lock()
        self.turn = 0

    def _next(self) -> str:
        with self.lock:
            for _ in range(len(self.urls)):
                url = self.urls[self.turn % len(self.urls)]
                self.turn += 1
                if url not in self.dead:
                    return url
        raise RuntimeError("every node is down")

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        _, _, rest = request.url.partition("://")
        _, _, path = rest.partition("/")
        while True:
            base = self._next()
            request.url = f"{base}/{path}"
            try:
                return super().send(request, *args, **kwargs)
            except requests.exceptions.ConnectionError as e:
                if "Connection refused" not in str(e):
                    raise
                with self.lock:
                    self.dead.add(base)


def round_robin_sdk(nodes: list[LocalServer], token: str) -> tuple[Any, RoundRobin]:
    adapter = RoundRobin([n.url for n in nodes])
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", adapter)
    return dropbox.Dropbox(token, session=session, max_retries_on_error=0, max_retries_on_rate_limit=0), adapter


@pytest.fixture(scope="module", params=["file", "s3"])
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[LocalServer], str]]:
    with pg.database() as url, contextlib.ExitStack() as stack:
        root = tmp_path_factory.mktemp("cluster")
        blob_url = os.environ.get("LOCALBOX_TEST_BLOB_URL") or f"file://{root / 'shared-blobs'}"
        if request.param == "s3":  # moto's S3 server on 127.0.0.1, as in tests/stores
            from stores._blobstores import create_bucket, start_moto

            moto, endpoint = start_moto()
            stack.callback(moto.stop)
            bucket = f"cluster-{secrets.token_hex(4)}"
            create_bucket(endpoint, bucket)
            blob_url = f"s3://{bucket}/nodes?endpoint_url={endpoint}&region=us-east-1"
        nodes = [LocalServer(root / f"node{i}", ["--database-url", url, "--blob-url", blob_url,
                                                 "--log-level", "info"], nodes=1) for i in range(3)]
        try:
            for node in nodes:
                node.start()
            yield nodes, url
        finally:
            for node in nodes:
                node.stop()


def _node_ids(nodes: list[LocalServer]) -> dict[str, LocalServer]:
    found: dict[str, LocalServer] = {}
    for node in nodes:
        m = re.search(r"claims jobs as (node-[0-9a-f]+)", node.log())
        assert m, node.log()
        found[m.group(1)] = node
    return found


def _owners(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT owner FROM jobs WHERE state='pending' AND owner IS NOT NULL").fetchall()
    return [str(r[0]) for r in rows]


def test_any_node_serves_any_call(cluster: tuple[list[LocalServer], str]) -> None:
    nodes, _ = cluster
    acct = nodes[0].new_account()
    dbx, _ = round_robin_sdk(nodes, acct.token)
    # A sequential session whose appends land on three different nodes, then finish on a fourth call.
    parts = [secrets.token_bytes(1000 + i) for i in range(4)]
    start = dbx.files_upload_session_start(parts[0])
    offset = len(parts[0])
    for part in parts[1:]:
        dbx.files_upload_session_append_v2(part, files.UploadSessionCursor(start.session_id, offset))
        offset += len(part)
    meta = dbx.files_upload_session_finish(b"", files.UploadSessionCursor(start.session_id, offset),
                                           files.CommitInfo("/seq.bin"))
    assert meta.size == offset
    for _ in range(3):  # each node reads it back
        assert dbx.files_download("/seq.bin")[1].content == b"".join(parts)
    # finish_batch launched on one node, checked on the others.
    sid = dbx.files_upload_session_start(b"batched", close=True).session_id
    launch = dbx.files_upload_session_finish_batch(
        [files.UploadSessionFinishArg(files.UploadSessionCursor(sid, 7), files.CommitInfo("/b.txt"))])
    for _ in range(200):
        status = dbx.files_upload_session_finish_batch_check(launch.get_async_job_id())
        if status.is_complete():
            break
        time.sleep(0.05)
    assert status.is_complete() and status.get_complete().entries[0].is_success()


def test_cursors_are_signed_with_one_key_for_all_nodes(cluster: tuple[list[LocalServer], str]) -> None:
    """A cursor made by one node pages on, and longpolls, on the others (the signing key lives in the
    shared database, #7); a tampered one is refused by every node."""
    nodes, _ = cluster
    acct = nodes[0].new_account()
    sdks = [make_sdk(n, acct.token) for n in nodes]
    for name in ("a", "b", "c"):
        sdks[0].files_upload(name.encode(), f"/Cur/{name}")
    page = sdks[0].files_list_folder("/Cur", limit=1)
    names = [e.name for e in page.entries]
    for sdk in sdks[1:]:
        page = sdk.files_list_folder_continue(page.cursor)
        names += [e.name for e in page.entries]
    assert names == ["a", "b", "c"]
    latest = sdks[2].files_list_folder_get_latest_cursor("/Cur").cursor
    sdks[0].files_upload(b"d", "/Cur/d")
    assert sdks[1].files_list_folder_longpoll(latest, 30).changes is True
    raw = bytearray(base64.urlsafe_b64decode(latest[3:] + "=" * (-len(latest[3:]) % 4)))
    raw[-3] ^= 0x01  # a byte of the payload, after the 32-byte MAC
    tampered = latest[:3] + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for sdk in sdks:
        with pytest.raises(dropbox.exceptions.BadInputError):
            sdk.files_list_folder_longpoll(tampered, 30)


def test_racing_appends_on_two_nodes_never_interleave(cluster: tuple[list[LocalServer], str]) -> None:
    nodes, _ = cluster
    acct = nodes[0].new_account()
    dbx, _ = round_robin_sdk(nodes, acct.token)
    headers = {"Authorization": f"Bearer {acct.token}", "Content-Type": "application/octet-stream"}
    for round_ in range(6):
        first = secrets.token_bytes(3000)
        sid = dbx.files_upload_session_start(first).session_id
        bodies = [bytes([65 + i]) * 5_000_000 for i in range(2)]  # more than a block: both write staging

        def append(i: int, sid: str = sid, offset: int = len(first), bodies: list[bytes] = bodies) -> int:
            arg = f'{{"cursor": {{"session_id": "{sid}", "offset": {offset}}}}}'
            with httpx.Client(timeout=120, trust_env=False) as c:
                r = c.post(f"{nodes[i].url}/2/files/upload_session/append_v2", content=bodies[i],
                           headers={**headers, "Dropbox-API-Arg": arg})
            return r.status_code

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(append, [0, 1]))
        assert sorted(codes) == [200, 409], codes  # one wins, the other is told its offset is stale
        winner = bodies[codes.index(200)]
        path = f"/race{round_}.bin"
        dbx.files_upload_session_finish(b"", files.UploadSessionCursor(sid, len(first) + len(winner)),
                                        files.CommitInfo(path))
        data = dbx.files_download(path)[1].content
        assert hashlib.sha256(data).digest() == hashlib.sha256(first + winner).digest()


def test_a_node_killed_while_jobs_run_is_taken_over(cluster: tuple[list[LocalServer], str]) -> None:
    nodes, url = cluster
    ids = _node_ids(nodes)
    accounts = [nodes[i % 3].new_account() for i in range(3)]
    batches: list[tuple[Any, str, list[str]]] = []
    for n, acct in enumerate(accounts):
        dbx, _ = round_robin_sdk(nodes, acct.token)
        for b in range(2):
            sessions = dbx.files_upload_session_start_batch(150).session_ids
            paths = [f"/jobs/{n}-{b}-{i:03}.txt" for i in range(len(sessions))]
            for sid, p in zip(sessions, paths, strict=True):
                dbx.files_upload_session_append_v2(p.encode(), files.UploadSessionCursor(sid, 0), close=True)
            batches.append((dbx, "", paths))
            entries = [files.UploadSessionFinishArg(files.UploadSessionCursor(sid, len(p)), files.CommitInfo(p))
                       for sid, p in zip(sessions, paths, strict=True)]
            job = dbx.files_upload_session_finish_batch(entries).get_async_job_id()
            batches[-1] = (dbx, job, paths)
    # Kill the first node seen holding a job, while it holds it.
    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline:
        owners = _owners(url)
        if owners:
            victim = ids[owners[0]]
    assert victim is not None, "no job was ever seen running"
    victim.stop(kill=True)
    try:
        for dbx, job, paths in batches:
            status = None
            for _ in range(1200):  # the lease (10 s) lapses, then another node runs it
                status = dbx.files_upload_session_finish_batch_check(job)
                if status.is_complete():
                    break
                time.sleep(0.05)
            assert status is not None and status.is_complete(), f"job {job} never completed"
            results = status.get_complete().entries
            assert [r.get_success().path_display for r in results] == paths
        for n, acct in enumerate(accounts):
            dbx, _ = round_robin_sdk([x for x in nodes if x is not victim], acct.token)
            listed = dbx.files_list_folder("/jobs").entries
            names = sorted(e.name for e in listed)
            # Exactly once: no duplicate, no "(1)" rename of an entry committed twice.
            assert names == sorted(f"{n}-{b}-{i:03}.txt" for b in range(2) for i in range(150))
            assert all(isinstance(e, files.FileMetadata) and e.size == len(f"/jobs/{e.name}") for e in listed)
    finally:
        victim.start()
