"""PostgreSQL for the tests: each caller gets a database of its own, `localbox_test_<random>`, made
and dropped here; no other database is touched.  The server is LOCALBOX_TEST_PG_ADMIN_URL (default
postgresql://postgres@127.0.0.1:5432/postgres, trust auth); `.ci/run` starts it when it is not up.
Without a reachable server the tests that need one skip, unless LOCALBOX_REQUIRE_POSTGRES=1 (CI),
where they fail."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import pytest

ADMIN_URL = os.environ.get("LOCALBOX_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "localbox_test_"


def _connect(url: str) -> object:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def available() -> str | None:
    """None when PostgreSQL can be used, else why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return 'psycopg is not installed (pip install "localbox[postgres]")'
    try:
        conn = _connect(ADMIN_URL)
    except Exception as e:
        return f"no PostgreSQL at {ADMIN_URL}: {e}"
    conn.close()  # type: ignore[attr-defined]
    return None


def require() -> None:
    why = available()
    if why is None:
        return
    if os.environ.get("LOCALBOX_REQUIRE_POSTGRES") == "1":
        pytest.fail(why)
    pytest.skip(why)


def _url_for(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def create_database(migrate: bool = True) -> str:
    name = PREFIX + secrets.token_hex(6)
    conn = _connect(ADMIN_URL)
    try:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]
    url = _url_for(name)
    if migrate:
        from localbox.stores.migrate import upgrade

        upgrade(url)
    return url


def drop_database(url: str) -> None:
    name = url.rpartition("/")[2]
    assert name.startswith(PREFIX), name  # never anything but our own
    conn = _connect(ADMIN_URL)
    try:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def database(migrate: bool = True) -> Iterator[str]:
    require()
    url = create_database(migrate)
    try:
        yield url
    finally:
        drop_database(url)
