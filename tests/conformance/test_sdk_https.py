"""HTTPS without effort: `localbox serve --tls` / `--tls-port` with the certificate of the local CA in
<data-dir>/tls, trusted through `localbox ca`; the official SDK over it, HTTP and HTTPS from one process,
the CA kept across restarts, a clean stop of both listeners, and a user's own certificate winning."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trustme
from harness import LOCALBOX, LocalServer, make_sdk, running_server

pytestmark = pytest.mark.conformance

DROPBOX_HOSTS = ["api.dropboxapi.com", "content.dropboxapi.com", "notify.dropboxapi.com"]


def _peer_cert(port: int, cafile: Path, host: str) -> bytes:
    """Handshake with the server on 127.0.0.1:`port` as if it were `host`, trusting only `cafile`."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        cert = tls.getpeercert(binary_form=True)
        assert cert is not None
        return cert


def _localbox_ca(data_dir: Path) -> str:
    out = subprocess.run([*LOCALBOX, "ca", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _run_sdk(script: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _env_without_trust_overrides() -> dict[str, str]:
    drop = {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"}
    return {k: v for k, v in os.environ.items() if k not in drop}


_UPLOAD_AND_DOWNLOAD = """
    import os
    os.environ["DROPBOX_API_HOST"] = os.environ["DROPBOX_API_CONTENT_HOST"] = {host!r}
    import dropbox
    from dropbox import files
    {make_client}
    assert dbx.check_user("ping").result == "ping"
    start = dbx.files_upload_session_start(b"secure bytes", close=True)
    md = dbx.files_upload_session_finish(
        b"", files.UploadSessionCursor(start.session_id, 12), files.CommitInfo("/tls/a.txt"))
    _, resp = dbx.files_download(md.path_lower)
    print(md.size, resp.content.decode())
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_sdk_trusting_localbox_ca_through_requests_ca_bundle(tmp_path: Path, host: str) -> None:
    """The recipe `export REQUESTS_CA_BUNDLE=$(localbox ca)`, then a plain `dropbox.Dropbox(token)`."""
    with running_server(tmp_path / "data", ["--tls"], https=True) as server:
        token = server.new_account().token
        env = {**_env_without_trust_overrides(), "REQUESTS_CA_BUNDLE": _localbox_ca(server.data_dir).strip(),
               "NO_PROXY": "127.0.0.1,localhost"}
        out = _run_sdk(_UPLOAD_AND_DOWNLOAD.format(
            host=f"{host}:{server.port}",
            make_client=f"dbx = dropbox.Dropbox({token!r}, max_retries_on_error=0)"), env)
        assert out == "12 secure bytes"


def test_sdk_trusting_localbox_ca_through_ca_certs(tmp_path: Path) -> None:
    """The other documented way: `ca_certs=` with the bundle variables out of the way (facts §1a)."""
    with running_server(tmp_path / "data", ["--tls"], https=True) as server:
        token = server.new_account().token
        make_client = (f"s = dropbox.create_session(ca_certs={str(server.ca_file)!r}); s.trust_env = False; "
                       f"dbx = dropbox.Dropbox({token!r}, session=s, max_retries_on_error=0)")
        out = _run_sdk(_UPLOAD_AND_DOWNLOAD.format(host=f"127.0.0.1:{server.port}", make_client=make_client),
                       _env_without_trust_overrides())
        assert out == "12 secure bytes"


def test_sdk_without_the_ca_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", ["--tls"], https=True) as server:
        token = server.new_account().token
        make_client = (f"s = dropbox.create_session(); s.trust_env = False; "
                       f"dbx = dropbox.Dropbox({token!r}, session=s, max_retries_on_error=0)")
        script = _UPLOAD_AND_DOWNLOAD.format(host=f"127.0.0.1:{server.port}", make_client=make_client)
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                             timeout=60, env=_env_without_trust_overrides())
        assert out.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out.stderr


def test_localbox_ca_prints_only_a_path_that_verifies_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stdout = _localbox_ca(data)  # before the server ever ran: the CA is made on demand
    assert stdout.endswith("\n") and stdout.count("\n") == 1
    ca = Path(stdout.strip())
    assert ca.is_absolute() and ca == (data / "tls" / "ca.pem").resolve()
    with running_server(data, ["--tls", "--tls-name", "box.example"], https=True) as server:
        assert _localbox_ca(data) == stdout  # the same CA, not a new one
        served = {_peer_cert(server.port, ca, host) for host in
                  ["localhost", "127.0.0.1", "box.example", *DROPBOX_HOSTS]}
        assert len(served) == 1
        with pytest.raises(ssl.SSLCertVerificationError):
            _peer_cert(server.port, ca, "www.dropbox.com")
        assert "https://127.0.0.1:" in server.log() and str(ca) in server.log()


def test_http_and_https_answer_at_once_from_one_process(tmp_path: Path) -> None:
    import httpx

    with running_server(tmp_path / "data", tls_port=True) as server:
        assert server.tls_port is not None and server.https_url is not None
        account = server.new_account()
        dbx = make_sdk(server, account.token)  # plain HTTP on --port
        dbx.files_upload(b"over http", "/both/a.txt")
        headers = {"Authorization": f"Bearer {account.token}"}
        with httpx.Client(base_url=server.https_url, verify=ssl.create_default_context(cafile=str(server.ca_file)),
                          trust_env=False, timeout=10) as https, \
                httpx.Client(base_url=server.url, trust_env=False, timeout=10) as http:
            # Both connections stay open and are used in turn: two listeners of the same app and state.
            for i in range(3):
                got = https.post("/2/files/download", headers={**headers, "Dropbox-API-Arg": '{"path": "/both/a.txt"}'})
                assert got.status_code == 200 and got.content == b"over http"
                put = https.post("/2/files/upload", content=f"over https {i}".encode(),
                                 headers={**headers, "Content-Type": "application/octet-stream",
                                          "Dropbox-API-Arg": f'{{"path": "/both/b{i}.txt"}}'})
                assert put.status_code == 200, put.text
                back = http.post("/2/files/download",
                                 headers={**headers, "Dropbox-API-Arg": f'{{"path": "/both/b{i}.txt"}}'})
                assert back.content == f"over https {i}".encode()
        assert server.log().count("Waiting for application startup") == 1
        # Plain HTTP is not spoken on the TLS port, nor TLS on the HTTP port.
        with pytest.raises(ssl.SSLError):
            _peer_cert(server.port, server.ca_file, "localhost")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_both_listeners_and_the_app_once(tmp_path: Path, sig: signal.Signals) -> None:
    server = LocalServer(tmp_path / "data", tls_port=True)
    server.start()
    try:
        assert server.proc is not None and server.tls_port is not None
        server.proc.send_signal(sig)
        server.proc.wait(timeout=15)
        log = server.log()
        assert log.count("Application shutdown complete") == 1, log
        for port in (server.port, server.tls_port):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        server.stop()


@pytest.mark.parametrize("tls_port", [False, True])
def test_idle_keep_alive_clients_do_not_hold_up_a_stop(tmp_path: Path, tls_port: bool) -> None:
    """A pooled client that never closes its TLS connection must not make SIGTERM wait for asyncio's
    30 s SSL shutdown timeout (it used to: the close waited for the client's close_notify)."""
    import time

    import requests

    server = LocalServer(tmp_path / "data", [] if tls_port else ["--tls"], https=not tls_port, tls_port=tls_port)
    server.start()
    try:
        assert server.proc is not None
        idle = requests.Session()
        https_url = server.https_url or server.url
        assert idle.get(https_url + "/", verify=str(server.ca_file)).status_code == 200
        if tls_port:
            plain = requests.Session()
            assert plain.get(server.url + "/").status_code == 200
        began = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=20)
        assert time.monotonic() - began < 5, server.log()
        assert server.log().count("Application shutdown complete") == 1
    finally:
        server.stop()


def test_a_restart_keeps_the_ca(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", ["--tls"], https=True) as server:
        trusted = tmp_path / "trusted-ca.pem"  # what a user copied into a trust store on the first day
        trusted.write_bytes(server.ca_file.read_bytes())
        first = _peer_cert(server.port, trusted, "localhost")
        server.restart()
        assert server.ca_file.read_bytes() == trusted.read_bytes()
        assert _peer_cert(server.port, trusted, "localhost") == first
        # A new name re-issues the server certificate, still under the CA the user trusts.
        server.stop()
        server.extra_args += ["--tls-name", "nas.lan"]
        server.start()
        assert _peer_cert(server.port, trusted, "nas.lan") != first
        assert server.ca_file.read_bytes() == trusted.read_bytes()


def test_own_certificate_wins_over_the_generated_one(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    args = ["--tls", "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    with running_server(tmp_path / "data", args, tls_port=True) as server:
        assert server.tls_port is not None
        served = _peer_cert(server.tls_port, tmp_path / "ca.pem", "localhost")
        assert served == ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
        assert not (server.data_dir / "tls").exists()  # no local CA was made for nothing
