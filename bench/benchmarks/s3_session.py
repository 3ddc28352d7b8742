"""s3_session: one upload session through localbox with the S3 blob store (moto on loopback) vs local disk.

moto's standalone S3 server (`moto_server`, from the `test` extra) runs as its own process on 127.0.0.1 with
a fresh bucket.  Each round, back to back in rotated order on the same (re-stamped) bytes:
- localbox-s3: `localbox serve --blob-url s3://...` , start + append_v2 in 8 MiB chunks (the last closes)
  + finish;
- localbox-disk: the same against the default local-disk blob store;
- moto-put: the baseline, the same bytes PUT straight to moto as 4 MiB objects by botocore with two
  requests in flight (what the S3 store keeps in flight for one session).
Figures: MB/s of each (upload+finish for localbox), localbox-s3 / moto-put and localbox-s3 / localbox-disk.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.benchmarks.common import mbps, upload_session
from bench.config import Config, MiB, size_label
from bench.payload import big_buffer, stamp
from bench.procs import Server, _spawn, free_port, localbox
from bench.stats import Recorder
from bench.wire import Connection, Dropbox

_CHUNK = 8 * MiB
_BLOCK = 4 * MiB
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


@contextlib.contextmanager
def moto(workdir: Path) -> Iterator[tuple[str, str]]:
    """moto_server on a free loopback port with a fresh bucket; yields (endpoint URL, bucket)."""
    port = free_port()
    argv = [sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1", "-p", str(port)]
    server = Server("moto", _spawn("moto", argv, workdir / "moto.log"), port, workdir / "moto.log")
    try:
        server.wait_ready()
        url = f"http://127.0.0.1:{port}"
        bucket = "bench-" + secrets.token_hex(4)
        _client(url).create_bucket(Bucket=bucket)
        yield url, bucket
    finally:
        server.stop()


def _client(url: str) -> Any:
    import botocore.config
    import botocore.session

    config = botocore.config.Config(s3={"addressing_style": "path"}, max_pool_connections=4,
                                    request_checksum_calculation="when_required")
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=url, region_name="us-east-1", config=config,
        aws_access_key_id="bench", aws_secret_access_key="bench")


def _raw_put(client: Any, bucket: str, prefix: str, data: memoryview) -> float:
    """PUT `data` as 4 MiB objects, two in flight; returns seconds."""

    def put(start: int) -> None:
        body = bytes(data[start : start + _BLOCK])
        client.put_object(Bucket=bucket, Key=f"{prefix}/{start // _BLOCK}", Body=body)

    began = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(put, range(0, len(data), _BLOCK)))
    return time.perf_counter() - began


def _localbox_upload(db: Dropbox, data: memoryview, path: str) -> float:
    began = time.perf_counter()
    session_id, size = upload_session(db, data, _CHUNK)
    db.finish(session_id, size, path)
    return time.perf_counter() - began


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    import os

    os.environ.update(_CREDENTIALS)  # the chain botocore reads, in the servers spawned below too
    size = 256 * MiB if cfg.quick else 512 * MiB
    buf = big_buffer(size)
    data = memoryview(buf)
    label = size_label(size)
    (workdir / "s3").mkdir()
    (workdir / "disk").mkdir()
    with moto(workdir) as (url, bucket):
        blob_url = f"s3://{bucket}/localbox?endpoint_url={url}&region=us-east-1"
        with (
            localbox(workdir / "s3", serve_args=["--blob-url", blob_url]) as lb_s3,
            localbox(workdir / "disk") as lb_disk,
        ):
            s3db = Dropbox(Connection(lb_s3.server.port), lb_s3.token)
            diskdb = Dropbox(Connection(lb_disk.server.port), lb_disk.token)
            raw = _client(url)
            for db in (s3db, diskdb):  # warm-up: imports, database creation, connections
                db.finish(db.start(b"w" * 1024, close=True), 1024, "/bench/warmup.bin")
            raw.put_object(Bucket=bucket, Key="warmup", Body=b"w")
            order = ["s3", "disk", "raw"]
            for round_id in range(cfg.rounds):
                stamp(buf, round_id, 5)
                seconds: dict[str, float] = {}
                for side in order[round_id % 3 :] + order[: round_id % 3]:
                    path = f"/bench/s3/r{round_id}.bin"
                    if side == "s3":
                        seconds[side] = _localbox_upload(s3db, data, path)
                    elif side == "disk":
                        seconds[side] = _localbox_upload(diskdb, data, path)
                    else:
                        seconds[side] = _raw_put(raw, bucket, f"raw/r{round_id}", data)
                s3_rate, disk_rate = mbps(size, seconds["s3"]), mbps(size, seconds["disk"])
                raw_rate = mbps(size, seconds["raw"])
                rec.add(f"moto-put {label} (4 MiB objects, 2 in flight)", raw_rate, "MB/s")
                rec.add(f"localbox-s3 upload+finish {label}", s3_rate, "MB/s")
                rec.ratio(f"localbox-s3 upload+finish {label}", s3_rate, raw_rate, "moto-put")
                rec.add(f"localbox-disk upload+finish {label}", disk_rate, "MB/s")
                rec.add(f"localbox-s3 upload+finish {label} (vs disk)", s3_rate, "MB/s")
                rec.ratio(f"localbox-s3 upload+finish {label} (vs disk)", s3_rate, disk_rate, "localbox-disk")
    rec.note(f"moto {_moto_version()} on 127.0.0.1; 8 MiB append_v2 chunks; {cfg.rounds} rounds")


def _moto_version() -> str:
    out = subprocess.run([sys.executable, "-c", "import moto; print(moto.__version__)"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"
