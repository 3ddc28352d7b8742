"""HTTPS: `localbox serve --tls-cert/--tls-key`, with the SDK pointed at it the documented way
(host variables read at import, the CA trusted through `ca_certs`, `trust_env` off)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trustme
from harness import running_server

pytestmark = pytest.mark.conformance


def test_sdk_over_https_with_a_trusted_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))

    tls = ["--tls-cert", str(cert_file), "--tls-key", str(key_file)]
    with running_server(tmp_path / "data", tls) as server:
        token = server.new_account().token
        # A fresh interpreter: the SDK reads DROPBOX_API_HOST when `dropbox.session` is imported.
        script = textwrap.dedent(f"""
            import os
            os.environ["DROPBOX_API_HOST"] = os.environ["DROPBOX_API_CONTENT_HOST"] = "127.0.0.1:{server.port}"
            import dropbox
            from dropbox import files
            s = dropbox.create_session(ca_certs={str(ca_file)!r})
            s.trust_env = False
            dbx = dropbox.Dropbox({token!r}, session=s, max_retries_on_error=0)
            assert dbx.check_user("ping").result == "ping"
            start = dbx.files_upload_session_start(b"secure bytes", close=True)
            md = dbx.files_upload_session_finish(
                b"", files.UploadSessionCursor(start.session_id, 12), files.CommitInfo("/tls/a.txt"))
            _, resp = dbx.files_download(md.path_lower)
            print(md.size, resp.content.decode())
        """)
        env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "12 secure bytes"


def test_plain_http_client_is_refused_on_the_tls_port(tmp_path: Path) -> None:
    import httpx

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    tls = ["--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    with (running_server(tmp_path / "data", tls) as server, httpx.Client(trust_env=False, timeout=10) as c,
          pytest.raises(httpx.HTTPError)):
        c.post(f"http://127.0.0.1:{server.port}/2/check/user", json={"query": "x"})
