"""A bounded load test on loopback: many clients upload and commit at once, then every file is checked.

LOCALBOX_LOAD_CLIENTS threads (default 16) share LOCALBOX_LOAD_ACCOUNTS accounts (default 4), so that
several clients write into the same namespace at once while other accounts proceed.  Each thread runs
for LOCALBOX_LOAD_SECONDS (CI: 20; README, Reliability, has the long run), picking one of:
- files/upload of 1 B .. 256 KiB;
- an upload session: start, appends of 1 MiB, finish (64 KiB .. 6 MiB);
- a batch: start_batch, one closing append per session, then finish_batch + /check or finish_batch_v2.
A 429 is retried after its Retry-After as every SDK does (counted, reported); any other non-200 is an
error, and there must be none.  Afterwards every committed file's metadata and bytes are compared with
what was sent.  Printed (`-s`): files/s, MB/s, p50/p99 latency per route, retries, errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _apiwire import content_hash
from harness import running_server
from reliability_backends import Backend

pytestmark = pytest.mark.reliability

SECONDS = float(os.environ.get("LOCALBOX_LOAD_SECONDS", "20"))
CLIENTS = int(os.environ.get("LOCALBOX_LOAD_CLIENTS", "16"))
ACCOUNTS = int(os.environ.get("LOCALBOX_LOAD_ACCOUNTS", "4"))
MiB = 1024 * 1024


def _bytes(tag: str, size: int) -> bytes:
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // 32 + 1))[:size]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    files: list[tuple[str, str, str, int]] = field(default_factory=list)  # (token, path, tag, size)
    bytes_sent: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)


class LoadClient:
    def __init__(self, url: str, token: str, tally: Tally) -> None:
        self.http = httpx.Client(base_url=url, timeout=120, trust_env=False)
        self.token = token
        self.tally = tally

    def post(self, route: str, *, arg: Any = None, data: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        if data is None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(arg).encode()
        else:
            headers["Content-Type"] = "application/octet-stream"
            headers["Dropbox-API-Arg"] = json.dumps(arg)
            body = data
        while True:
            t0 = time.perf_counter()
            r = self.http.post(f"/2/{route}", content=body, headers=headers)
            self.tally.latencies[route].append(time.perf_counter() - t0)
            if r.status_code == 429:
                self.tally.retries += 1
                time.sleep(float(r.headers.get("retry-after", "1")))
                continue
            if r.status_code != 200:
                raise AssertionError(f"{route}: {r.status_code} {r.text[:300]}")
            if data is not None:
                self.tally.bytes_sent += len(data)
            return r.json() if r.content else None

    def committed(self, path: str, tag: str, size: int, md: dict[str, Any]) -> None:
        assert md["size"] == size and md["path_lower"] == path.lower(), md
        self.tally.files.append((self.token, md["path_lower"], tag, size))

    # -- operations ---------------------------------------------------------------------------
    def upload(self, rng: random.Random, name: str) -> None:
        size = rng.randrange(1, 256 * 1024)
        path = f"/load/{name}"
        self.committed(path, name, size, self.post("files/upload", arg={"path": path}, data=_bytes(name, size)))

    def session(self, rng: random.Random, name: str) -> None:
        size = rng.randrange(64 * 1024, 6 * MiB)
        data = _bytes(name, size)
        sid = self.post("files/upload_session/start", arg={}, data=data[:MiB])["session_id"]
        offset = min(MiB, size)
        while size - offset > MiB:
            self.post("files/upload_session/append_v2", arg={"cursor": {"session_id": sid, "offset": offset}},
                      data=data[offset : offset + MiB])
            offset += MiB
        path = f"/load/{name}"
        md = self.post("files/upload_session/finish", arg={"cursor": {"session_id": sid, "offset": offset},
                                                            "commit": {"path": path}}, data=data[offset:])
        self.committed(path, name, size, md)

    def batch(self, rng: random.Random, name: str) -> None:
        count = rng.randrange(2, 9)
        sids = self.post("files/upload_session/start_batch", arg={"num_sessions": count})["session_ids"]
        entries, wanted = [], []
        for i, sid in enumerate(sids):
            tag, size = f"{name}-{i}", rng.randrange(0, 128 * 1024)
            self.post("files/upload_session/append_v2", arg={"cursor": {"session_id": sid, "offset": 0},
                                                             "close": True}, data=_bytes(tag, size))
            path = f"/load/{name}/{i}"
            entries.append({"cursor": {"session_id": sid, "offset": size}, "commit": {"path": path}})
            wanted.append((path, tag, size))
        if rng.random() < 0.5:
            result = self.post("files/upload_session/finish_batch_v2", arg={"entries": entries})
        else:
            result = self.post("files/upload_session/finish_batch", arg={"entries": entries})
            job = result.get("async_job_id")
            while result[".tag"] != "complete":
                time.sleep(0.01)
                result = self.post("files/upload_session/finish_batch/check", arg={"async_job_id": job})
        for (path, tag, size), entry in zip(wanted, result["entries"], strict=True):
            assert entry[".tag"] == "success", entry
            self.committed(path, tag, size, entry)


def _client_loop(client: LoadClient, seed: int, deadline: float) -> None:
    rng = random.Random(seed)
    n = 0
    try:
        while time.monotonic() < deadline:
            op = rng.choices([client.upload, client.session, client.batch], weights=[5, 2, 3])[0]
            op(rng, f"c{seed}-{n}")
            n += 1
    except Exception as e:
        client.tally.errors.append(repr(e))
    finally:
        client.http.close()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


@pytest.mark.timeout(SECONDS + 600)
def test_load_many_clients_then_every_file_is_exact(tmp_path: Path, backend: Backend) -> None:
    with running_server(tmp_path / "data", backend.serve_args) as server:
        tokens = [server.new_account().token for _ in range(ACCOUNTS)]
        tallies = [Tally() for _ in range(CLIENTS)]
        clients = [LoadClient(server.url, tokens[i % ACCOUNTS], tallies[i]) for i in range(CLIENTS)]
        started = time.monotonic()
        deadline = started + SECONDS
        threads = [threading.Thread(target=_client_loop, args=(c, i, deadline)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 300)
        elapsed = time.monotonic() - started

        errors = [e for t in tallies for e in t.errors]
        files = [f for t in tallies for f in t.files]
        sent = sum(t.bytes_sent for t in tallies)
        latencies: dict[str, list[float]] = defaultdict(list)
        for t in tallies:
            for route, values in t.latencies.items():
                latencies[route] += values
        lines = [f"load ({backend.name}): {CLIENTS} clients, {ACCOUNTS} accounts, {elapsed:.1f} s: "
                 f"{len(files)} files ({len(files) / elapsed:.0f} files/s), {sent / 1e6:.0f} MB "
                 f"({sent / 1e6 / elapsed:.1f} MB/s), {sum(t.retries for t in tallies)} retried 429s, "
                 f"{len(errors)} errors"]
        for route in sorted(latencies):
            v = latencies[route]
            lines.append(f"  {route:45s} n={len(v):6d}  p50={statistics.median(v) * 1000:7.1f} ms  "
                         f"p99={_percentile(v, 0.99) * 1000:7.1f} ms")
        print("\n" + "\n".join(lines))
        assert not errors, errors[:5]
        assert files, "nothing was committed"

        # Every committed file is exact: metadata and bytes (all of them).
        t0 = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=120, trust_env=False) as http:
            for token, path, tag, size in files:
                r = http.post("/2/files/download", headers={"Authorization": f"Bearer {token}",
                                                            "Dropbox-API-Arg": json.dumps({"path": path})})
                assert r.status_code == 200, (path, r.status_code)
                md = json.loads(r.headers["dropbox-api-result"])
                data = _bytes(tag, size)
                assert r.content == data, f"{path}: bytes differ"
                assert md["size"] == size and md["content_hash"] == content_hash(data), md
            for token in tokens:  # and nothing else appeared
                listed = _count_files(http, token)
                assert listed == sum(1 for f in files if f[0] == token), (listed, token[:8])
        lines.append(f"  verified {len(files)} files ({sum(f[3] for f in files) / 1e6:.0f} MB) byte for byte "
                     f"in {time.monotonic() - t0:.1f} s")
        print(lines[-1])


def _count_files(http: httpx.Client, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    body = http.post("/2/files/list_folder", json={"path": "", "recursive": True, "limit": 2000},
                     headers=headers).json()
    count = sum(1 for e in body["entries"] if e[".tag"] == "file")
    while body["has_more"]:
        body = http.post("/2/files/list_folder/continue", json={"cursor": body["cursor"]}, headers=headers).json()
        count += sum(1 for e in body["entries"] if e[".tag"] == "file")
    return count
