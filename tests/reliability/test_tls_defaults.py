"""TLS defaults of `localbox serve --tls`, checked with real handshakes: TLS 1.0 and 1.1 are refused,
TLS 1.2 gets an AEAD suite with forward secrecy (CBC/SHA-1-only clients are refused), TLS 1.3 works,
and the generated keys are readable by their owner only."""

from __future__ import annotations

import os
import socket
import ssl
import stat
from collections.abc import Iterator

import pytest
from harness import LocalServer, running_server
from reliability_backends import Backend

pytestmark = pytest.mark.reliability
# TLS is the HTTP layer's, the same whatever stores the data.
RELIABILITY_BACKENDS = ("embedded",)


@pytest.fixture(scope="module")
def tls_server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with running_server(tmp_path_factory.mktemp("tls") / "data", [*backend.serve_args, "--tls"], https=True) as srv:
        yield srv


def _client(server: LocalServer, version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    # Let this client offer what it is asked to, old protocols included: the server must be the one to refuse.
    ctx.set_ciphers(ciphers or "ALL:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _handshake(server: LocalServer, ctx: ssl.SSLContext) -> tuple[str, str]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        version, cipher = tls.version(), tls.cipher()
        assert version is not None and cipher is not None
        return version, cipher[0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # naming the old versions is deprecated
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_1_0_and_1_1_are_refused(tls_server: LocalServer, version: ssl.TLSVersion) -> None:
    try:
        ctx = _client(tls_server, version)
    except ssl.SSLError:
        pytest.skip(f"this OpenSSL cannot even offer {version.name}")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(tls_server, ctx)


def test_tls_1_2_gets_an_aead_suite_with_forward_secrecy(tls_server: LocalServer) -> None:
    version, cipher = _handshake(tls_server, _client(tls_server, ssl.TLSVersion.TLSv1_2))
    assert version == "TLSv1.2"
    assert cipher.startswith(("ECDHE-", "DHE-")) and ("GCM" in cipher or "CHACHA20" in cipher), cipher


def test_tls_1_2_client_with_only_cbc_sha1_suites_is_refused(tls_server: LocalServer) -> None:
    ctx = _client(tls_server, ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(tls_server, ctx)


def test_tls_1_3_works(tls_server: LocalServer) -> None:
    version, _ = _handshake(tls_server, _client(tls_server, ssl.TLSVersion.TLSv1_3))
    assert version == "TLSv1.3"


def test_generated_keys_are_private(tls_server: LocalServer) -> None:
    tls_dir = tls_server.ca_file.parent
    for name in ("ca.key", "server.key"):
        assert stat.S_IMODE(os.stat(tls_dir / name).st_mode) == 0o600, name
    for name in ("ca.pem", "server.pem"):
        assert stat.S_IMODE(os.stat(tls_dir / name).st_mode) & 0o022 == 0, name
