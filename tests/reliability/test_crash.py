"""kill -9 while clients do everything at once; after each restart, every promise still holds.

Each round gives a fresh account to six client threads that run until the server dies under them:
- an appender streams unaligned appends into one sequential session;
- a committer runs start + append + finish of small sequential sessions;
- a concurrent uploader sends a concurrent session's pieces out of order and finishes it;
- a batcher runs start_batch, appends, finish_batch and polls /check;
- an overwriter keeps replacing three files with files/upload (mode overwrite);
- a mover uploads, moves (files/move_v2) and deletes (files/delete_v2).
The server is killed with SIGKILL at a random moment and restarted.  Each thread keeps a ledger: for
every path it touched, the states it may be in (acknowledged: exactly one; an operation in flight at
the kill: the old state or the new one).  After the restart:
- every append that got a 200 is still there at its offset (the session resumes there, or one append
  later when the last append was stored but its answer was lost), and the committed file is exactly
  the bytes sent;
- every path is in one of its allowed states (acknowledged overwrites, moves and deletes reflected);
  a move in flight left exactly one of its source and destination;
- every finish_batch job whose launch was acknowledged completes, every entry once: a double commit
  would show as an autorenamed "e0 (1)" next to "e0";
- a session whose commit was acknowledged cannot be committed again (lookup_failed/not_found);
- every file a recursive listing shows is complete: its bytes hash to its content_hash and its size,
  and the path is one the test wrote (no temporary or half-written file is visible);
- files verified in earlier rounds are sampled and must still be exact.

LOCALBOX_CRASH_ITERATIONS sets the number of rounds on the embedded backend (CI: 4),
LOCALBOX_CRASH_ITERATIONS_POSTGRES_S3 on PostgreSQL + S3 (CI: 2; a round takes longer there: every
restart reconnects and the verification reads from moto); README, Reliability, has the long runs.
LOCALBOX_CRASH_MAX_SECONDS bounds each run (default 1800 s): rounds stop starting past it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _apiwire import Api, content_hash
from harness import LocalServer
from reliability_backends import Backend

pytestmark = pytest.mark.reliability

ITERATIONS = {
    "embedded": int(os.environ.get("LOCALBOX_CRASH_ITERATIONS", "4")),
    "postgres-s3": int(os.environ.get("LOCALBOX_CRASH_ITERATIONS_POSTGRES_S3", "2")),
}
MAX_SECONDS = float(os.environ.get("LOCALBOX_CRASH_MAX_SECONDS", "1800"))
MiB = 1024 * 1024
BLOCK = 4 * MiB
CHUNK = MiB + 4321  # unaligned: appends cross block boundaries
MAX_CHUNKS = 32  # per round: bounds the disk a long run fills
FRESH_EVERY = 25  # rounds on one data dir before a fresh one (disk again)
ABSENT = "absent"


class ServerDied(Exception):
    """The connection failed: the kill came before or during this call."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bytes(tag: str, size: int) -> bytes:
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // 32 + 1))[:size]


@dataclass
class Ledger:
    """What one client thread did, as the server's answers (or their absence) allow it to know."""

    states: dict[str, set[str]] = field(default_factory=dict)  # path -> allowed: sha256 of bytes, or ABSENT
    content: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes, for exact comparisons
    moves_in_flight: list[tuple[str, str]] = field(default_factory=list)
    committed_sessions: list[tuple[str, int]] = field(default_factory=list)  # (session id, size)
    jobs: list[tuple[str, dict[str, str], list[tuple[str, int]]]] = field(default_factory=list)
    appends: list[tuple[str, int, list[bytes]]] = field(default_factory=list)  # (session, acked, chunks)
    unexpected: list[str] = field(default_factory=list)  # non-2xx answers before the kill
    calls: int = 0

    def allow(self, path: str, state: str, *, certain: bool) -> None:
        """After a call that sets `path` to `state`: certain when acknowledged, else one more option."""
        if certain:
            self.states[path] = {state}
        else:
            self.states.setdefault(path, {ABSENT}).add(state)

    def data(self, data: bytes) -> str:
        key = _sha(data)
        self.content[key] = data
        return key


class Client:
    """Raw calls for one thread: a transport failure means the server died (ServerDied)."""

    def __init__(self, url: str, token: str, ledger: Ledger) -> None:
        self.http = httpx.Client(base_url=url, timeout=60, trust_env=False)
        self.api = Api(self.http, token)
        self.ledger = ledger

    def call(self, send: Callable[[], httpx.Response], *ok: int) -> httpx.Response:
        try:
            r = send()
        except httpx.TransportError as e:
            raise ServerDied from e
        self.ledger.calls += 1
        if r.status_code not in (ok or (200,)):
            self.ledger.unexpected.append(f"{r.request.url.path}: {r.status_code} {r.text[:200]}")
            raise ServerDied  # stop this thread; the failure is reported after the round
        return r

    def rpc(self, route: str, arg: Any) -> Any:
        return self.call(lambda: self.api.rpc(route, arg)).json()

    def content(self, route: str, arg: Any, data: bytes) -> Any:
        return self.call(lambda: self.api.content(route, arg, data)).json()


# -- the client threads -------------------------------------------------------------------------------

def appender(c: Client, stop: threading.Event, rng: random.Random, tag: str) -> None:
    sid = c.content("files/upload_session/start", {}, b"")["session_id"]
    chunks: list[bytes] = []
    c.ledger.appends.append((sid, 0, chunks))
    while not stop.is_set() and len(chunks) < MAX_CHUNKS:
        time.sleep(rng.uniform(0, 0.03))
        data = _bytes(f"{tag}-{len(chunks)}", CHUNK)
        offset = len(chunks) * CHUNK
        chunks.append(data)  # the one in flight: maybe stored, answer lost
        c.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": offset}}, data)
        c.ledger.appends[-1] = (sid, offset + CHUNK, chunks)


def committer(c: Client, stop: threading.Event, rng: random.Random, tag: str) -> None:
    n = 0
    while not stop.is_set():
        first, second = _bytes(f"{tag}-{n}a", rng.randrange(1, 300_000)), _bytes(f"{tag}-{n}b", rng.randrange(0, 5000))
        path = f"/commit/s{n}"
        sid = c.content("files/upload_session/start", {}, first)["session_id"]
        key = c.ledger.data(first + second)
        c.ledger.allow(path, key, certain=False)
        c.content("files/upload_session/finish", {"cursor": {"session_id": sid, "offset": len(first)},
                                                  "commit": {"path": path}}, second)
        c.ledger.allow(path, key, certain=True)
        c.ledger.committed_sessions.append((sid, len(first) + len(second)))
        n += 1


def concurrent_uploader(c: Client, stop: threading.Event, rng: random.Random, tag: str) -> None:
    n = 0
    while not stop.is_set():
        head, tail = _bytes(f"{tag}-{n}h", BLOCK), _bytes(f"{tag}-{n}t", rng.randrange(1, 100_000))
        path = f"/concurrent/c{n}"
        sid = c.rpc("files/upload_session/start_batch", {"num_sessions": 1, "session_type": "concurrent"}
                    )["session_ids"][0]
        # The closing tail first, then the head: pieces arrive out of order as parallel clients send them.
        c.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": BLOCK}, "close": True},
                  tail)
        c.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": 0}}, head)
        key = c.ledger.data(head + tail)
        c.ledger.allow(path, key, certain=False)
        c.content("files/upload_session/finish", {"cursor": {"session_id": sid, "offset": BLOCK + len(tail)},
                                                  "commit": {"path": path}}, b"")
        c.ledger.allow(path, key, certain=True)
        c.ledger.committed_sessions.append((sid, BLOCK + len(tail)))
        n += 1


def batcher(c: Client, stop: threading.Event, rng: random.Random, tag: str) -> None:
    n = 0
    while not stop.is_set():
        count = rng.randrange(1, 6)
        sids = c.rpc("files/upload_session/start_batch", {"num_sessions": count})["session_ids"]
        entries, expected, sessions = [], {}, []
        for j, sid in enumerate(sids):
            data = _bytes(f"{tag}-{n}-{j}", rng.randrange(0, 200_000))
            c.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": 0}, "close": True},
                      data)
            path = f"/batch/b{n}/e{j}"
            entries.append({"cursor": {"session_id": sid, "offset": len(data)},
                            "commit": {"path": path, "mode": "add", "autorename": True}})
            expected[path] = c.ledger.data(data)
            sessions.append((sid, len(data)))
        for path, key in expected.items():
            c.ledger.allow(path, key, certain=False)
        launched = c.rpc("files/upload_session/finish_batch", {"entries": entries})
        if launched[".tag"] == "complete":
            job_id = ""
            result = launched
        else:
            job_id = launched["async_job_id"]
            c.ledger.jobs.append((job_id, expected, sessions))  # acknowledged: must complete after a restart
            result = {".tag": "in_progress"}
            while result[".tag"] == "in_progress":
                time.sleep(0.02)
                result = c.rpc("files/upload_session/finish_batch/check", {"async_job_id": job_id})
        assert [e[".tag"] for e in result["entries"]] == ["success"] * count, (job_id, result)
        for path, key in expected.items():
            c.ledger.allow(path, key, certain=True)
        c.ledger.committed_sessions += sessions
        n += 1


def overwriter(c: Client, stop: threading.Event, rng: random.Random, tag: str) -> None:
    n = 0
    while not stop.is_set():
        path = f"/overwrite/f{n % 3}"
        data = _bytes(f"{tag}-{n}", rng.randrange(0, 400_000))
        key = c.ledger.data(data)
        c.ledger.allow(path, key, certain=False)
        md = c.content("files/upload", {"path": path, "mode": "overwrite"}, data)
        assert md["content_hash"] == content_hash(data)
        c.ledger.allow(path, key, certain=True)
        n += 1


def mover(c: Client, stop: threading.Event, rng: random.Random, tag: str) -> None:
    n = 0
    while not stop.is_set():
        src, dst = f"/move/m{n}/a", f"/move/m{n}/b"
        data = _bytes(f"{tag}-{n}", rng.randrange(1, 100_000))
        key = c.ledger.data(data)
        c.ledger.allow(src, key, certain=False)
        c.content("files/upload", {"path": src}, data)
        c.ledger.allow(src, key, certain=True)
        c.ledger.moves_in_flight.append((src, dst))
        c.ledger.allow(dst, key, certain=False)
        c.ledger.allow(src, ABSENT, certain=False)
        c.rpc("files/move_v2", {"from_path": src, "to_path": dst})
        c.ledger.moves_in_flight.pop()
        c.ledger.allow(src, ABSENT, certain=True)
        c.ledger.allow(dst, key, certain=True)
        if rng.random() < 0.5:
            c.ledger.allow(dst, ABSENT, certain=False)
            c.rpc("files/delete_v2", {"path": dst})
            c.ledger.allow(dst, ABSENT, certain=True)
        n += 1


WORKERS = (appender, committer, concurrent_uploader, batcher, overwriter, mover)


# -- after the restart --------------------------------------------------------------------------------

def _state(api: Api, path: str) -> tuple[str, bytes | None]:
    r = api.download({"path": path})
    if r.status_code == 409:
        assert "not_found" in r.json()["error_summary"], r.text
        return ABSENT, None
    assert r.status_code == 200, r.text
    md = json.loads(r.headers["dropbox-api-result"])
    assert md["size"] == len(r.content) and md["content_hash"] == content_hash(r.content), (path, md)
    return _sha(r.content), r.content


def _verify_appends(api: Api, ledger: Ledger, survivors: dict[str, str]) -> int:
    checked = 0
    for sid, acked, chunks in ledger.appends:
        r = api.content("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": acked},
                                                          "close": True}, b"")
        size = acked
        if r.status_code != 200:
            correct = r.json()["error"]["correct_offset"]
            assert correct == acked + CHUNK, f"{sid}: resumed at {correct}, acknowledged {acked}"
            api.append_ok(sid, correct, b"", close=True)
            size = correct
        sent = b"".join(chunks)[:size]
        md = api.finish_ok(sid, size, f"/appended/{sid[-12:]}")
        assert md["size"] == size and md["content_hash"] == content_hash(sent)
        assert api.download_bytes(md["path_lower"]) == sent, f"{sid}: committed bytes differ from those sent"
        survivors[md["path_lower"]] = _sha(sent)
        checked += 1
    return checked


def _verify(api: Api, ledgers: list[Ledger], survivors: dict[str, str]) -> dict[str, int]:
    figures = {"appends": 0, "jobs": 0, "recommits": 0, "paths": 0, "listed": 0}
    allowed: dict[str, set[str]] = {}
    content: dict[str, bytes] = {}
    for ledger in ledgers:
        assert not ledger.unexpected, ledger.unexpected
        content.update(ledger.content)
        for job_id, expected, sessions in ledger.jobs:  # acknowledged launches complete, each entry once
            result = api.poll_batch(job_id, timeout=60)
            assert [e[".tag"] for e in result["entries"]] == ["success"] * len(expected), result
            assert [e["path_display"] for e in result["entries"]] == list(expected), result
            for path, key in expected.items():
                ledger.allow(path, key, certain=True)
            ledger.committed_sessions += sessions
            figures["jobs"] += 1
        for path, states in ledger.states.items():
            allowed.setdefault(path.lower(), set()).update(states)
        for src, dst in ledger.moves_in_flight:
            got = {_state(api, src)[0] != ABSENT, _state(api, dst)[0] != ABSENT}
            assert got == {True, False}, f"move {src} -> {dst} in flight at the kill: not exactly one of them"
        for sid, size in ledger.committed_sessions:
            r = api.finish(sid, size, f"/recommit/{sid[-12:]}")
            assert r.status_code == 409 and r.json()["error_summary"].startswith("lookup_failed/not_found"), \
                f"an acknowledged commit of {sid} could be committed again: {r.status_code} {r.text[:200]}"
            figures["recommits"] += 1
        figures["appends"] += _verify_appends(api, ledger, survivors)
    for path, states in allowed.items():
        state, data = _state(api, path)
        assert state in states, f"{path} is {state}; allowed {states}"
        if data is not None:
            assert data == content[state]
            survivors[path] = state
        figures["paths"] += 1
    # Everything listed is complete, and is something the clients wrote.
    listed = _list_files(api)
    for md in listed:
        path = md["path_lower"]
        assert path in allowed or path.startswith("/appended/"), f"unexpected file {md['path_display']}"
        if path in allowed:
            assert md["content_hash"] == content_hash(content[_state(api, path)[0]]), md
    figures["listed"] = len(listed)
    return figures


def _list_files(api: Api) -> list[dict[str, Any]]:
    r = api.rpc("files/list_folder", {"path": "", "recursive": True})
    assert r.status_code == 200, r.text
    body = r.json()
    entries = list(body["entries"])
    while body["has_more"]:
        body = api.rpc("files/list_folder/continue", {"cursor": body["cursor"]}).json()
        entries += body["entries"]
    return [e for e in entries if e[".tag"] == "file"]


# -- the test -----------------------------------------------------------------------------------------

def _new_account(http: httpx.Client, admin_token: str) -> str:
    r = http.post("/admin/accounts", json={"email": f"crash-{secrets.token_hex(4)}@example.com", "tokens": [{}]},
                  headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 201, r.text
    token = r.json()["tokens"][0]
    return token if isinstance(token, str) else str(token["token"])


@pytest.mark.timeout(MAX_SECONDS + 600)  # rounds stop starting after MAX_SECONDS; the last one finishes
def test_every_promise_survives_sigkill_under_mixed_load(tmp_path: Path, backend: Backend) -> None:
    admin_token = secrets.token_urlsafe(16)
    started = time.monotonic()
    survivors: dict[str, dict[str, str]] = {}  # token -> path -> sha256, verified in an earlier round
    totals: dict[str, int] = {"rounds": 0, "calls": 0}
    server: LocalServer | None = None
    try:
        for round_ in range(ITERATIONS[backend.name]):
            if time.monotonic() - started > MAX_SECONDS:
                break
            if round_ % FRESH_EVERY == 0:
                if server is not None:
                    server.stop()
                server = LocalServer(tmp_path / f"data{round_}", [*backend.serve_args, f"--admin-token={admin_token}"])
                server.start()
                survivors.clear()
            assert server is not None
            figures = _one_round(server, admin_token, round_, survivors)
            totals["rounds"] += 1
            for k, v in figures.items():
                totals[k] = totals.get(k, 0) + v
        print(f"\ncrash rounds survived ({backend.name}): {totals} in {time.monotonic() - started:.0f} s")
        assert totals["rounds"] >= 1
    finally:
        if server is not None:
            server.stop()


def _one_round(server: LocalServer, admin_token: str, round_: int, survivors: dict[str, dict[str, str]]
               ) -> dict[str, int]:
    rng = random.Random(round_)
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        token = _new_account(http, admin_token)
    stop = threading.Event()
    ledgers = [Ledger() for _ in WORKERS]
    threads = []
    for i, work in enumerate(WORKERS):
        client = Client(server.url, token, ledgers[i])

        def run(work: Any = work, client: Client = client, i: int = i) -> None:
            try:
                work(client, stop, random.Random(round_ * 100 + i), f"{round_}-{i}")
            except ServerDied:
                pass
            except Exception as e:  # an assertion in the thread: reported by _verify
                client.ledger.unexpected.append(f"{work.__name__}: {e!r}")
            finally:
                client.http.close()

        threads.append(threading.Thread(target=run, daemon=True))
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.3, 2.0))
    server.stop(kill=True)
    stop.set()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a client thread hung after the kill"
    server.start()
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        mine: dict[str, str] = {}
        figures = _verify(Api(http, token), ledgers, mine)
        for old_token, files in survivors.items():
            old = Api(http, old_token)
            for path in rng.sample(sorted(files), min(5, len(files))):
                assert _sha(old.download_bytes(path)) == files[path], f"{path} of an earlier round changed"
                figures["earlier"] = figures.get("earlier", 0) + 1
        survivors[token] = mine
    figures["calls"] = sum(ledger.calls for ledger in ledgers)
    return figures
