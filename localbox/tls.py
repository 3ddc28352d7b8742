"""A local certificate authority and a server certificate signed by it, kept in `<data-dir>/tls/`.

The CA is made once and then reused forever, so a user trusts it once (REQUESTS_CA_BUNDLE,
NODE_EXTRA_CA_CERTS, rclone --ca-cert, ...).  The server certificate is re-issued by that same CA
whenever it is missing, close to expiry, or lacks a host name the server is asked to answer for.
Every file is written whole or not at all (temp file + rename), so a crash never leaves half a key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
import secrets
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# What the official SDKs and rclone connect to once pointed at localbox by host name or address.
DEFAULT_NAMES = ("localhost", "api.dropboxapi.com", "content.dropboxapi.com", "notify.dropboxapi.com",
                 "127.0.0.1", "::1")
CA_DAYS = 3650
# Under the 825 days that Apple platforms accept for any server certificate, trusted root or not.
SERVER_DAYS = 730
# Re-issued this long before it expires, so a server restarted now and then never serves an expired one.
RENEW_BEFORE = dt.timedelta(days=30)
# Tolerates a client clock a little behind ours.
BACKDATE = dt.timedelta(hours=1)

_RSA_BITS = 2048  # the widest-supported key type; keyEncipherment is meaningful for it
_DNS = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_WILDCARD_ADDRESSES = frozenset({ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")})


class TlsError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path
    names: tuple[str, ...]  # the server certificate's subject alternative names, as given


def tls_paths(directory: Path) -> tuple[Path, Path, Path, Path]:
    """ca.pem, ca.key, server.pem, server.key inside `directory`."""
    return (directory / "ca.pem", directory / "ca.key", directory / "server.pem", directory / "server.key")


def parse_name(text: str) -> x509.GeneralName:
    """`host.example`, `*.example`, `192.0.2.7`, `::1` or `[::1]` -> a SAN entry; ValueError otherwise."""
    raw = text.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    try:
        return x509.IPAddress(ipaddress.ip_address(raw))
    except ValueError:
        pass
    try:
        name = raw.lower().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"not a host name or IP address: {text!r}") from None
    if len(name) > 253 or not _DNS.match(name):
        raise ValueError(f"not a host name or IP address: {text!r}")
    return x509.DNSName(name)


def listen_host_name(host: str) -> str | None:
    """The name a server listening on `host` is reached by, if it is a concrete one (not 0.0.0.0 or ::)."""
    host = host.strip()
    if not host:
        return None
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host.strip("[]")) in _WILDCARD_ADDRESSES:
            return None
    return host


def ensure_ca(directory: Path, *, now: dt.datetime | None = None) -> Path:
    """The CA certificate's path, creating the CA first if there is none yet."""
    with _locked(directory):
        _load_or_create_ca(directory, now or _utcnow())
    return tls_paths(directory)[0]


def ensure_server_cert(directory: Path, extra_names: Iterable[str] = (), *,
                       now: dt.datetime | None = None) -> TlsFiles:
    """A server certificate (and key) signed by the local CA that is valid for DEFAULT_NAMES and
    `extra_names`; the existing one when it still fits, a new one otherwise."""
    now = now or _utcnow()
    names = tuple(dict.fromkeys([*DEFAULT_NAMES, *(n.strip() for n in extra_names if n.strip())]))
    wanted = {parse_name(n) for n in names}
    ca_pem, _, cert_pem, key_pem = tls_paths(directory)
    with _locked(directory):
        ca_cert, ca_key = _load_or_create_ca(directory, now)
        if not _server_cert_fits(cert_pem, key_pem, ca_cert, wanted, now):
            key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
            cert = _issue_server_cert(ca_cert, ca_key, key, wanted, now)
            # Key first: a crash between the two leaves a mismatched pair, which the next start re-issues.
            _write_atomic(key_pem, _key_bytes(key), 0o600)
            _write_atomic(cert_pem, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return TlsFiles(ca_cert=ca_pem, cert=cert_pem, key=key_pem, names=names)


# -- the CA -------------------------------------------------------------------------------------------

def _load_or_create_ca(directory: Path, now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    ca_pem, ca_key_pem, _, _ = tls_paths(directory)
    if ca_pem.exists():
        if not ca_key_pem.exists():
            raise TlsError(f"{ca_pem} exists but its key {ca_key_pem} does not; restore the key, or delete "
                           f"{ca_pem} to make a new CA (clients must then trust the new one)")
        try:
            cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
            key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), password=None)
        except ValueError as e:
            raise TlsError(f"cannot read the local CA in {directory}: {e}") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != cert.public_key():
            raise TlsError(f"{ca_key_pem} is not the key of {ca_pem}")
        return cert, key
    # No CA certificate was ever written, so nobody trusts this CA yet: a stray ca.key is replaced.
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    cert = _issue_ca_cert(key, now)
    _write_atomic(ca_key_pem, _key_bytes(key), 0o600)
    _write_atomic(ca_pem, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _issue_ca_cert(key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    # A random tag tells one installation's CA from another's in a trust store listing.
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "localbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"localbox local CA {secrets.token_hex(4)}"),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        # path_length=0: it signs server certificates only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )


# -- the server certificate ---------------------------------------------------------------------------

def _issue_server_cert(ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, key: rsa.RSAPrivateKey,
                       names: set[x509.GeneralName], now: dt.datetime) -> x509.Certificate:
    # DNS names first, then addresses, each sorted: the same names always give the same listing.
    ordered = sorted(names, key=lambda n: (isinstance(n, x509.IPAddress), str(n.value)))
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "localbox"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, "localbox server")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Clients match host names against these only (the subject CN is ignored by modern clients).
        .add_extension(x509.SubjectAlternativeName(ordered), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _server_cert_fits(cert_pem: Path, key_pem: Path, ca_cert: x509.Certificate,
                      wanted: set[x509.GeneralName], now: dt.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
        key = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        sans = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (key.public_key() == cert.public_key()
            and cert.not_valid_after_utc - now > RENEW_BEFORE
            and cert.not_valid_before_utc <= now
            and wanted <= sans)


# -- helpers ------------------------------------------------------------------------------------------

def _key_usage(*, digital_signature: bool = False, key_encipherment: bool = False,
               key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=key_encipherment, data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False,
                         decipher_only=False)


def _key_bytes(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write to a private temp file beside `path`, sync, rename over it, then sync the directory."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sys.platform != "win32":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One process at a time creates or re-issues (`localbox ca` may run while `serve` starts)."""
    directory.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        yield
        return
    import fcntl

    with open(directory / ".lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
