"""Settings: parsed once, from command-line flags, then LOCALBOX_* environment variables, then defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    pass


_SIZE = re.compile(r"(\d+)\s*([KMGT]i?B?|B)?\Z", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
          "KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)\Z")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_size(text: str) -> int:
    """`4194304`, `4MiB`, `350GB`, `2TiB`."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"not a size: {text!r}")
    unit = (m.group(2) or "").upper().removesuffix("B")
    return int(m.group(1)) * _UNITS[unit]


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `24h`, `7d`."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"not a port: {text!r}")
    return port


def parse_bool(text: str) -> bool:
    """`1`, `true`, `yes`, `on` and `0`, `false`, `no`, `off` (any case)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_names(text: str) -> tuple[str, ...]:
    """`a.example,192.0.2.7 b.example`: names separated by commas or spaces."""
    return tuple(n for n in re.split(r"[,\s]+", text) if n)


def parse_log_format(text: str) -> str:
    """`text` (default) or `json` (#9)."""
    value = text.strip().lower()
    if value not in ("text", "json"):
        raise ValueError(f"not a log format (text, json): {text!r}")
    return value


def _path(text: str) -> Path:
    return Path(text).expanduser()


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `localbox` can be told.  Each field maps to --flag-name and LOCALBOX_FLAG_NAME."""

    data_dir: Path = field(default=Path("localbox-data"), metadata={"cast": _path})
    # Backends by URL (#5): sqlite:///PATH or postgresql://...; file:///PATH or s3://BUCKET/PREFIX?....
    # None: the embedded defaults under data_dir (localbox/backends.py).
    database_url: str | None = field(default=None, metadata={"cast": str})
    blob_url: str | None = field(default=None, metadata={"cast": str})
    host: str = field(default="127.0.0.1", metadata={"cast": str})
    port: int = field(default=8080, metadata={"cast": parse_port})
    tls_cert: Path | None = field(default=None, metadata={"cast": _path})
    tls_key: Path | None = field(default=None, metadata={"cast": _path})
    # HTTPS with a certificate from the local CA kept in <data-dir>/tls (--tls-cert wins when given).
    tls: bool = field(default=False, metadata={"cast": parse_bool})
    # HTTPS on this port as well as plain HTTP on --port, from the same process.
    tls_port: int | None = field(default=None, metadata={"cast": parse_port})
    # Host names or addresses the generated certificate covers besides localhost and the Dropbox hosts.
    tls_names: tuple[str, ...] = field(default=(), metadata={"cast": parse_names})
    # Upload sessions expire this long after they start (Dropbox: 7 days).
    session_ttl: float = field(default=7 * 86400.0, metadata={"cast": parse_duration})
    # A finished finish_batch job stays checkable this long (at least 24 h by default).
    job_retention: float = field(default=86400.0, metadata={"cast": parse_duration})
    # Largest file an upload session may reach (files.stone: 2^41 - 2^22 bytes).
    max_session_size: int = field(default=2**41 - 2**22, metadata={"cast": parse_size})
    # The allocation users/get_space_usage reports for every account (not enforced yet).
    quota: int = field(default=2 * 1024**4, metadata={"cast": parse_size})
    log_level: str = field(default="info", metadata={"cast": str})
    # Log lines as text or JSON objects, each with the request id (#9).
    log_format: str = field(default="text", metadata={"cast": parse_log_format})
    # Test servers: everything in memory (nothing on disk), the admin API's token (generated and
    # printed when not given), seed data applied at start and after a reset, the request log's size.
    memory: bool = field(default=False, metadata={"cast": parse_bool})
    admin_token: str | None = field(default=None, metadata={"cast": str})
    seed: Path | None = field(default=None, metadata={"cast": _path})
    request_log_size: int = field(default=2000, metadata={"cast": int})
    # Garbage collection: how often it runs, how long an unreferenced block is kept after its last use
    # (commits in flight are protected by it), and how long replaced or deleted file versions stay
    # restorable (Dropbox: 30 days on basic plans).
    gc_interval: float = field(default=900.0, metadata={"cast": parse_duration})
    gc_grace: float = field(default=3600.0, metadata={"cast": parse_duration})
    revision_retention: float = field(default=30 * 86400.0, metadata={"cast": parse_duration})
    # Write contention: the longest a commit waits for its namespace (others commit into it) before it
    # is refused with too_many_write_operations (429, or a per-entry failure in batch results).
    write_wait: float = field(default=10.0, metadata={"cast": parse_duration})
    # Per-account caps (answered 429 too_many_requests; 0: no cap): open upload sessions, pending batch jobs.
    max_open_sessions: int = field(default=10_000, metadata={"cast": int})
    max_pending_jobs: int = field(default=1_000, metadata={"cast": int})
    # Slow and greedy clients (localbox/http_limits.py): request headers complete within header_timeout,
    # no gap longer than body_timeout inside a body, a response's client taking none of it for at most
    # send_timeout, at most max_connections open (503 past it).
    header_timeout: float = field(default=20.0, metadata={"cast": parse_duration})
    body_timeout: float = field(default=60.0, metadata={"cast": parse_duration})
    send_timeout: float = field(default=180.0, metadata={"cast": parse_duration})
    max_connections: int = field(default=1000, metadata={"cast": int})

    @property
    def database_path(self) -> Path:
        return self.data_dir / "metadata.sqlite3"

    @property
    def blob_root(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def https(self) -> bool:
        return self.tls or self.tls_port is not None or self.tls_cert is not None

    @staticmethod
    def load(flags: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
        """Flags (None = not given) win over LOCALBOX_* variables, which win over defaults."""
        values: dict[str, Any] = {}
        for f in fields(Settings):
            raw = flags.get(f.name)
            source = f"--{f.name.replace('_', '-')}"
            if raw is None:
                raw = environ.get(f"LOCALBOX_{f.name.upper()}")
                source = f"LOCALBOX_{f.name.upper()}"
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["cast"](str(raw))
            except ValueError as e:
                raise ConfigError(f"{source}: {e}") from None
        settings = Settings(**values)
        if (settings.tls_cert is None) != (settings.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if settings.tls_port is not None and settings.tls_port == settings.port:
            raise ConfigError("--tls-port must differ from --port (which serves plain HTTP next to it)")
        return settings
