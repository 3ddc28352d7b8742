"""`localbox serve --blob-url s3://...` against moto's S3 over HTTP, driven by the official SDK: bytes go to
the bucket as blocks, a second server process (another node, same data) reads them, Range downloads work,
an object store that stops answering turns uploads into 503 with Retry-After, `serve` refuses to start on a
bucket it cannot use, and /readyz checks the bucket without writing to it."""

from __future__ import annotations

import random
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _blobstores import MotoEndpoint, create_bucket, s3_error_endpoint, sha, start_moto
from dropbox import files
from harness import LOCALBOX, free_port, make_sdk, running_server

from localbox.stores.s3client import S3Location

pytestmark = pytest.mark.conformance

MIB = 1024 * 1024


def _objects(endpoint: MotoEndpoint, prefix: str) -> list[str]:
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint.url, region_name="us-east-1")
    listing = client.list_objects_v2(Bucket=endpoint.bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for o in listing.get("Contents", ()))


def test_serve_on_s3_upload_session_download_and_a_second_node(moto_s3: MotoEndpoint, tmp_path: Path) -> None:
    prefix = f"serve-{secrets.token_hex(4)}/"
    args = ["--blob-url", moto_s3.blob_url(prefix)]
    data = random.Random(3).randbytes(9 * MIB + 12345)
    with running_server(tmp_path / "data", args) as srv:
        assert "blobs=s3://" in srv.log()
        account = srv.new_account()
        dbx = make_sdk(srv, account.token)
        sid = dbx.files_upload_session_start(data[: 4 * MIB]).session_id
        dbx.files_upload_session_append_v2(data[4 * MIB : 6 * MIB + 5], files.UploadSessionCursor(sid, 4 * MIB))
        dbx.files_upload_session_append_v2(data[6 * MIB + 5 :], files.UploadSessionCursor(sid, 6 * MIB + 5),
                                           close=True)
        meta = dbx.files_upload_session_finish(b"", files.UploadSessionCursor(sid, len(data)),
                                               files.CommitInfo("/big.bin"))
        assert meta.size == len(data)
        dbx.files_upload(b"small file", "/small.txt")
    blocks = [sha(data[i : i + 4 * MIB]).hex() for i in range(0, len(data), 4 * MIB)] + [sha(b"small file").hex()]
    stored = _objects(moto_s3, prefix)
    # committed: no staging left behind; a use marker per block written (the collector removes them later)
    assert [k for k in stored if not k.startswith("uses/")] == sorted(f"blocks/{h[:2]}/{h}" for h in blocks)
    assert {k.split("/")[2] for k in stored if k.startswith("uses/")} == set(blocks)
    # Another process on the same metadata and bucket (a restart, or a second node) serves the bytes.
    with running_server(tmp_path / "data", args) as srv:
        dbx = make_sdk(srv, account.token)
        assert dbx.files_download("/big.bin")[1].content == data
        _, res = dbx.files_download("/big.bin", extra_headers={"Range": f"bytes={4 * MIB - 10}-{8 * MIB + 9}"})
        assert res.status_code == 206 and res.content == data[4 * MIB - 10 : 8 * MIB + 10]
        assert dbx.files_download("/small.txt")[1].content == b"small file"


def test_serve_answers_503_when_the_object_store_is_down(tmp_path: Path) -> None:
    server, url = start_moto()
    bucket = "down-" + secrets.token_hex(4)
    create_bucket(url, bucket)
    blob_url = f"s3://{bucket}/p?endpoint_url={url}&region=us-east-1"
    assert S3Location.parse(blob_url).endpoint_url == url
    try:
        with running_server(tmp_path / "data", ["--blob-url", blob_url]) as srv:
            account = srv.new_account()
            dbx = make_sdk(srv, account.token)
            dbx.files_upload(b"before", "/before.txt")
            server.stop()
            headers = {"Authorization": f"Bearer {account.token}", "Content-Type": "application/octet-stream",
                       "Dropbox-API-Arg": '{"path": "/after.txt"}'}
            with httpx.Client(base_url=srv.url, timeout=60, trust_env=False) as http:
                response = http.post("/2/files/upload", content=b"after", headers=headers)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "1"
            names = [e.name for e in dbx.files_list_folder("").entries]
            assert names == ["before.txt"]  # nothing was committed for the failed upload
    finally:
        server.stop()


# -- start-up and readiness checks of the bucket (#5)
@pytest.fixture()
def refusing_endpoint() -> Iterator[str]:
    """An S3 endpoint that refuses every request's credentials, as S3 does for an unknown access key."""
    with s3_error_endpoint(403, "InvalidAccessKeyId",
                           "The AWS Access Key Id you provided does not exist in our records.") as server:
        yield server.url


def _serve_fails(tmp_path: Path, blob_url: str) -> str:
    """Start `localbox serve` on `blob_url`; it must exit on its own, quickly: its last stderr line."""
    began = time.monotonic()
    out = subprocess.run([*LOCALBOX, "serve", "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1",
                          "--port", str(free_port()), "--blob-url", blob_url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stdout
    assert time.monotonic() - began < 20
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


def test_serve_fails_fast_on_a_missing_bucket(moto_s3: MotoEndpoint, tmp_path: Path) -> None:
    missing = "no-such-bucket-" + secrets.token_hex(4)
    line = _serve_fails(tmp_path, f"s3://{missing}/p?endpoint_url={moto_s3.url}&region=us-east-1")
    assert line == f"localbox: --blob-url s3://{missing}/p/?endpoint_url={moto_s3.url}&region=us-east-1: " \
                   f"bucket '{missing}' does not exist at {moto_s3.url}"


def test_serve_fails_fast_when_the_credentials_are_refused(refusing_endpoint: str, tmp_path: Path) -> None:
    line = _serve_fails(tmp_path, f"s3://bkt/p?endpoint_url={refusing_endpoint}&region=us-east-1")
    assert line.startswith("localbox: --blob-url s3://bkt/p/")
    assert f"{refusing_endpoint} refused the credentials for bucket 'bkt' (InvalidAccessKeyId: " in line


def test_serve_fails_fast_when_the_endpoint_does_not_answer(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    line = _serve_fails(tmp_path, f"s3://bkt/p?endpoint_url={endpoint}&region=us-east-1")
    assert line.startswith("localbox: --blob-url s3://bkt/p/")
    assert f"cannot reach the S3 endpoint {endpoint}: " in line


def test_readyz_writes_nothing_to_the_bucket_and_sees_it_go(tmp_path: Path) -> None:
    server, url = start_moto()
    endpoint = MotoEndpoint(server, url, "ready-" + secrets.token_hex(4))
    create_bucket(url, endpoint.bucket)
    try:
        with running_server(tmp_path / "data", ["--blob-url", endpoint.blob_url("p")]) as srv, \
                httpx.Client(base_url=srv.url, timeout=60, trust_env=False) as http:
            for _ in range(3):
                r = http.get("/readyz")
                assert (r.status_code, r.json()) == (200, {"status": "ready", "metadata": "ok", "blobs": "ok"})
            assert _objects(endpoint, "") == []  # no probe block, no PUT per probe
            server.stop()
            r = http.get("/readyz")
            assert r.status_code == 503 and r.json()["blobs"] != "ok" and r.json()["metadata"] == "ok"
    finally:
        server.stop()
