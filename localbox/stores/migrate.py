"""Schema migrations (Alembic, scripts in localbox/migrations) for both metadata backends.

SQLite: the store migrates its own file when it opens it (the embedded default upgrades itself, see
SqliteMetadataStore); a fresh file is created from localbox.stores.schema and stamped with HEAD.
PostgreSQL: only `localbox migrate` changes the schema, under an advisory lock so that two nodes
running it at once take turns; `serve` refuses a database that is not at HEAD.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from localbox.stores.schema_head import BASELINE, HEAD, REVISIONS

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 0x6C6F63616C626F78 & 0x7FFFFFFFFFFFFFFF  # "localbox": the advisory lock `migrate` holds


def alembic_config(url: str, connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def sqlalchemy_url(url: str) -> str:
    """Our URLs (postgresql://, sqlite:///) in SQLAlchemy's spelling (psycopg 3 as the driver)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def script_head() -> str:
    """The head revision of the scripts (tests check it equals schema_head.HEAD)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, target: str = "head") -> None:
    """Run the Alembic revisions up to `target` on the database at `url`."""
    from alembic import command
    from sqlalchemy import create_engine, text

    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
                conn.commit()
            try:
                command.upgrade(alembic_config(url, conn), target)
                conn.commit()
            finally:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                    conn.commit()
    finally:
        engine.dispose()


def create_statements(dialect_name: str) -> list[str]:
    """The DDL of a fresh database at HEAD, for `dialect_name` (sqlite or postgresql)."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from localbox.stores.schema import metadata

    dialect = (sqlite if dialect_name == "sqlite" else postgresql).dialect()
    out: list[str] = []
    for table in metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        out += [str(CreateIndex(i).compile(dialect=dialect)).strip() for i in table.indexes]
    return out


# -- SQLite: what the store does when it opens a file ---------------------------------------------

def sqlite_revision(db: sqlite3.Connection) -> str | None:
    """The file's Alembic revision; BASELINE-to-be for a file of an earlier release ("legacy"); None if empty."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "alembic_version" in tables:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])
    return "legacy" if "meta" in tables else None


def stamp_sqlite(db: sqlite3.Connection, revision: str) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL, "
               "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
    db.execute("DELETE FROM alembic_version")
    db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))


def create_sqlite(db: sqlite3.Connection) -> None:
    for statement in create_statements("sqlite"):
        db.execute(statement)
    stamp_sqlite(db, HEAD)


__all__ = ["BASELINE", "HEAD", "REVISIONS", "create_sqlite", "create_statements", "sqlite_revision",
           "stamp_sqlite", "upgrade"]
