"""Settings: flag > LOCALBOX_* environment > default; sizes, durations, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localbox.config import ConfigError, Settings, parse_duration, parse_size

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("4194304", 4194304),
        ("4MiB", 4194304),
        ("4mib", 4194304),
        ("4 MiB", 4194304),
        ("1KiB", 1024),
        ("1K", 1000),
        ("1KB", 1000),
        ("7B", 7),
        ("350GB", 350_000_000_000),
        ("2TiB", 2_199_023_255_552),
        ("1GiB", 1_073_741_824),
        ("3M", 3_000_000),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MiB", "-1", "1.5GB", "4XB", "4 PiB", "four", "4MiBs", "0x10"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("24h", 86400.0), ("7d", 604800.0), ("1.5h", 5400.0), ("0", 0.0)],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "7w", "-5", "1h30m", "abc", "15 minutes"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_defaults() -> None:
    s = Settings.load({}, {})
    assert s.port == 8080
    assert s.host == "127.0.0.1"
    assert s.data_dir == Path("localbox-data")
    assert s.tls_cert is None and s.tls_key is None
    assert s.session_ttl == 7 * 86400
    assert s.job_retention == 86400
    assert s.max_session_size == 2**41 - 2**22
    assert s.database_path == Path("localbox-data") / "metadata.sqlite3"
    assert s.blob_root == Path("localbox-data") / "blobs"


def test_flag_beats_env_beats_default() -> None:
    env = {"LOCALBOX_PORT": "9001", "LOCALBOX_SESSION_TTL": "15m", "LOCALBOX_MAX_SESSION_SIZE": "350GB"}
    s = Settings.load({"port": "9000", "session_ttl": None, "max_session_size": None}, env)
    assert s.port == 9000  # flag
    assert s.session_ttl == 900.0  # env (flag given as None = not given)
    assert s.max_session_size == 350_000_000_000  # env
    assert s.job_retention == 86400.0  # default


def test_flags_may_be_typed_values() -> None:
    s = Settings.load({"port": 1234, "data_dir": Path("/tmp/x"), "job_retention": "24h"}, {})
    assert s.port == 1234
    assert s.data_dir == Path("/tmp/x")
    assert s.job_retention == 86400.0


def test_unrelated_environment_is_ignored() -> None:
    s = Settings.load({}, {"PORT": "1", "LOCALBOX_PORTX": "2", "localbox_port": "3"})
    assert s.port == 8080


@settings(max_examples=100, deadline=None)
@given(
    flag=st.one_of(st.none(), st.integers(0, 65535)),
    env=st.one_of(st.none(), st.integers(0, 65535)),
)
def test_port_precedence(flag: int | None, env: int | None) -> None:
    environ = {} if env is None else {"LOCALBOX_PORT": str(env)}
    s = Settings.load({"port": None if flag is None else str(flag)}, environ)
    expected = flag if flag is not None else env if env is not None else 8080
    assert s.port == expected


@pytest.mark.parametrize(
    ("flags", "environ", "key"),
    [
        ({"port": "abc"}, {}, "--port"),
        ({"port": "70000"}, {}, "--port"),
        ({}, {"LOCALBOX_PORT": "-1"}, "LOCALBOX_PORT"),
        ({"session_ttl": "forever"}, {}, "--session-ttl"),
        ({}, {"LOCALBOX_SESSION_TTL": "7w"}, "LOCALBOX_SESSION_TTL"),
        ({"max_session_size": "lots"}, {}, "--max-session-size"),
        ({}, {"LOCALBOX_MAX_SESSION_SIZE": "1.5GB"}, "LOCALBOX_MAX_SESSION_SIZE"),
        ({}, {"LOCALBOX_JOB_RETENTION": "x"}, "LOCALBOX_JOB_RETENTION"),
    ],
)
def test_bad_values_name_the_key(flags: dict[str, str], environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.load(flags, environ)
    assert key in str(e.value)


def test_bad_env_is_not_consulted_when_flag_given() -> None:
    assert Settings.load({"port": "80"}, {"LOCALBOX_PORT": "nonsense"}).port == 80


def test_tls_cert_and_key_go_together(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    with pytest.raises(ConfigError):
        Settings.load({"tls_cert": str(cert)}, {})
    with pytest.raises(ConfigError):
        Settings.load({}, {"LOCALBOX_TLS_KEY": str(key)})
    s = Settings.load({"tls_cert": str(cert)}, {"LOCALBOX_TLS_KEY": str(key)})
    assert (s.tls_cert, s.tls_key) == (cert, key)
