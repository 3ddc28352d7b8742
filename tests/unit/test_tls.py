"""The local CA and server certificate (localbox/tls.py), and the TLS settings: names, extensions,
reuse of the CA, re-issue rules, file modes, atomic writes, and a real handshake per host name."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given
from hypothesis import strategies as st

from localbox import tls
from localbox.config import ConfigError, Settings

pytestmark = pytest.mark.unit

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(path: Path) -> tuple[set[str], set[str]]:
    san = _cert(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(a) for a in san.get_values_for_type(x509.IPAddress)}


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tls.TlsFiles:
    """One CA + server certificate (RSA keys take a moment) for the read-only tests."""
    return tls.ensure_server_cert(tmp_path_factory.mktemp("d") / "tls", ["box.example", "192.0.2.7", "[2001:db8::1]"])


def test_sans_are_the_defaults_plus_the_extra_names(issued: tls.TlsFiles) -> None:
    dns, ips = _sans(issued.cert)
    assert dns == {"localhost", "api.dropboxapi.com", "content.dropboxapi.com", "notify.dropboxapi.com", "box.example"}
    assert ips == {"127.0.0.1", "::1", "192.0.2.7", "2001:db8::1"}


def test_ca_extensions(issued: tls.TlsFiles) -> None:
    ca = _cert(issued.ca_cert)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ca.subject == ca.issuer
    ca.verify_directly_issued_by(ca)
    assert dt.timedelta(days=3649) < ca.not_valid_after_utc - ca.not_valid_before_utc < dt.timedelta(days=3652)


def test_server_extensions(issued: tls.TlsFiles) -> None:
    ca, cert = _cert(issued.ca_cert), _cert(issued.cert)
    cert.verify_directly_issued_by(ca)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=825)


def test_file_modes(issued: tls.TlsFiles) -> None:
    assert stat.S_IMODE(os.stat(issued.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(issued.ca_cert.with_name("ca.key")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(issued.ca_cert).st_mode) == 0o644
    assert not list(issued.ca_cert.parent.glob("*.tmp"))


def test_keys_stay_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        files = tls.ensure_server_cert(tmp_path / "tls")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(files.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "tls" / "ca.key").st_mode) == 0o600


@pytest.mark.parametrize("host", ["localhost", "api.dropboxapi.com", "content.dropboxapi.com",
                                  "notify.dropboxapi.com", "127.0.0.1", "::1", "box.example", "192.0.2.7"])
def test_a_client_trusting_the_ca_accepts_the_server_for(issued: tls.TlsFiles, host: str) -> None:
    _handshake(issued, host)


def test_a_client_rejects_a_name_not_in_the_certificate(issued: tls.TlsFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(issued, "www.dropbox.com")


def _handshake(files: tls.TlsFiles, host: str) -> None:
    """A full TLS handshake over memory buffers with Python's default client checks (chain, name, purpose)."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.cert, files.key)
    client_ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=host)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_later_starts_reuse_every_file(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    first = tls.ensure_server_cert(d, ["box.example"], now=NOW)
    before = {p.name: p.read_bytes() for p in d.glob("*.*")}
    again = tls.ensure_server_cert(d, ["box.example"], now=NOW + dt.timedelta(days=300))
    assert {p.name: p.read_bytes() for p in d.glob("*.*")} == before
    # Fewer names than the certificate has is fine too.
    tls.ensure_server_cert(d, [], now=NOW + dt.timedelta(days=300))
    assert again.cert.read_bytes() == before["server.pem"] == first.cert.read_bytes()
    assert tls.ensure_ca(d) == first.ca_cert and first.ca_cert.read_bytes() == before["ca.pem"]


def _reissued(d: Path, before: bytes, ca_before: bytes) -> x509.Certificate:
    cert_path = d / "server.pem"
    assert cert_path.read_bytes() != before
    assert (d / "ca.pem").read_bytes() == ca_before  # the CA users trust never changes
    cert = _cert(cert_path)
    cert.verify_directly_issued_by(_cert(d / "ca.pem"))
    return cert


def test_a_missing_name_reissues_the_server_certificate_with_the_same_ca(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    tls.ensure_server_cert(d, ["box.example"], now=NOW)
    before, ca_before = (d / "server.pem").read_bytes(), (d / "ca.pem").read_bytes()
    tls.ensure_server_cert(d, ["box.example", "10.0.0.9"], now=NOW)
    _reissued(d, before, ca_before)
    dns, ips = _sans(d / "server.pem")
    assert "box.example" in dns and "10.0.0.9" in ips


def test_a_certificate_near_expiry_is_reissued(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    tls.ensure_server_cert(d, now=NOW)
    before, ca_before = (d / "server.pem").read_bytes(), (d / "ca.pem").read_bytes()
    late = NOW + dt.timedelta(days=tls.SERVER_DAYS) - tls.RENEW_BEFORE + dt.timedelta(hours=1)
    tls.ensure_server_cert(d, now=late - dt.timedelta(hours=2))
    assert (d / "server.pem").read_bytes() == before  # still more than RENEW_BEFORE left
    tls.ensure_server_cert(d, now=late)
    cert = _reissued(d, before, ca_before)
    assert cert.not_valid_after_utc > late + dt.timedelta(days=tls.SERVER_DAYS - 1)


@pytest.mark.parametrize("damage", ["delete cert", "delete key", "foreign key", "garbage cert"])
def test_a_missing_or_mismatched_server_pair_is_reissued(tmp_path: Path, damage: str) -> None:
    d = tmp_path / "tls"
    tls.ensure_server_cert(d)
    before, ca_before = (d / "server.pem").read_bytes(), (d / "ca.pem").read_bytes()
    if damage == "delete cert":
        (d / "server.pem").unlink()
    elif damage == "delete key":
        (d / "server.key").unlink()
    elif damage == "foreign key":
        (d / "server.key").write_bytes(tls._key_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    else:
        (d / "server.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    files = tls.ensure_server_cert(d)
    if damage != "delete cert":
        _reissued(d, before, ca_before)
    assert _cert(files.cert).public_key() == _load_key(files.key).public_key()


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def test_a_certificate_from_another_ca_is_reissued(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    tls.ensure_server_cert(mine)
    tls.ensure_server_cert(other)
    for name in ("server.pem", "server.key"):
        (mine / name).write_bytes((other / name).read_bytes())
    tls.ensure_server_cert(mine)
    _cert(mine / "server.pem").verify_directly_issued_by(_cert(mine / "ca.pem"))


def test_a_ca_certificate_without_its_key_is_an_error_not_a_new_ca(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    ca = tls.ensure_ca(d)
    (d / "ca.key").unlink()
    with pytest.raises(tls.TlsError, match=r"ca\.key"):
        tls.ensure_server_cert(d)
    assert ca.exists()


def test_a_stray_ca_key_without_certificate_is_replaced(tmp_path: Path) -> None:
    # A crash between writing ca.key and ca.pem: nobody can trust that CA yet, so a new one is made.
    d = tmp_path / "tls"
    d.mkdir()
    (d / "ca.key").write_bytes(b"half")
    files = tls.ensure_server_cert(d)
    _cert(files.cert).verify_directly_issued_by(_cert(files.ca_cert))


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "server.key"
    target.write_bytes(b"old")

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(tls.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        tls._write_atomic(target, b"new", 0o600)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]


def test_certificates_are_pem(issued: tls.TlsFiles) -> None:
    assert _cert(issued.cert).public_bytes(Encoding.PEM) == issued.cert.read_bytes()


# -- names ------------------------------------------------------------------------------------------

@given(st.ip_addresses())
def test_parse_name_reads_any_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert tls.parse_name(str(addr)) == x509.IPAddress(addr)
    if addr.version == 6:
        assert tls.parse_name(f"[{addr}]") == x509.IPAddress(addr)


_LABEL = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?", fullmatch=True)


@given(st.lists(_LABEL, min_size=1, max_size=5), st.booleans())
def test_parse_name_reads_host_names_lowercased(labels: list[str], wildcard: bool) -> None:
    name = ".".join(labels)
    if wildcard:
        name = "*." + name
    try:
        ipaddress.ip_address(name)
    except ValueError:
        assert tls.parse_name(name) == x509.DNSName(name.lower())


@pytest.mark.parametrize("text", ["", "a b", "under_score.example", "-lead.example", "a..b", "*", "x.*.example",
                                  "a" * 64 + ".example"])
def test_parse_name_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        tls.parse_name(text)


def test_parse_name_encodes_unicode_as_idna() -> None:
    assert tls.parse_name("bücher.example") == x509.DNSName("xn--bcher-kva.example")


@pytest.mark.parametrize(("host", "name"), [("0.0.0.0", None), ("::", None), ("[::]", None), ("", None),
                                            ("192.0.2.7", "192.0.2.7"), ("box.lan", "box.lan"), ("::1", "::1")])
def test_listen_host_name(host: str, name: str | None) -> None:
    assert tls.listen_host_name(host) == name


# -- settings ---------------------------------------------------------------------------------------

def test_tls_settings_from_flags_env_and_defaults() -> None:
    s = Settings.load({}, {})
    assert (s.tls, s.tls_port, s.tls_names, s.https) == (False, None, (), False)
    s = Settings.load({}, {"LOCALBOX_TLS": "1", "LOCALBOX_TLS_PORT": "8443", "LOCALBOX_TLS_NAMES": "a.lan, 10.0.0.2"})
    assert (s.tls, s.tls_port, s.tls_names, s.https) == (True, 8443, ("a.lan", "10.0.0.2"), True)
    s = Settings.load({"tls": "True", "tls_names": "b.lan"}, {"LOCALBOX_TLS": "0", "LOCALBOX_TLS_NAMES": "a.lan"})
    assert (s.tls, s.tls_names) == (True, ("b.lan",))
    assert Settings.load({"tls_port": "9443"}, {}).https
    assert Settings.load({}, {"LOCALBOX_DATA_DIR": "/srv/lb"}).tls_dir == Path("/srv/lb/tls")


@pytest.mark.parametrize(("flags", "env", "message"), [
    ({}, {"LOCALBOX_TLS": "maybe"}, "LOCALBOX_TLS"),
    ({"tls_port": "70000"}, {}, "--tls-port"),
    ({"port": "8443", "tls_port": "8443"}, {}, "--tls-port must differ"),
])
def test_tls_settings_errors(flags: dict[str, str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(flags, env)
