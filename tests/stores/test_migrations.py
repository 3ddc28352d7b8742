"""Schema migrations (#5): Alembic revisions and the schema a fresh database gets agree on SQLite and
PostgreSQL; data dirs of releases before Alembic upgrade keeping every file; PostgreSQL is never
migrated behind an operator's back: `serve` refuses an outdated schema and says what to run."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pg
import pytest
from harness import LOCALBOX, make_sdk, running_server
from sqlalchemy import create_engine, inspect
from stores.legacy import make_legacy

from localbox.stores import migrate
from localbox.stores.schema_head import HEAD

pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")]


def _shape(url: str) -> dict[str, Any]:
    """Tables -> (columns with type and nullability, indexes with columns and uniqueness)."""
    engine = create_engine(migrate.sqlalchemy_url(url))
    try:
        insp = inspect(engine)
        out: dict[str, Any] = {}
        for table in insp.get_table_names():
            if table == "alembic_version":
                continue
            columns = sorted((c["name"], type(c["type"]).__name__, c["nullable"]) for c in insp.get_columns(table))
            indexes = sorted((i["name"], tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
                             for i in insp.get_indexes(table))
            out[table] = (columns, indexes, insp.get_pk_constraint(table)["constrained_columns"])
        return out
    finally:
        engine.dispose()


def test_the_scripts_end_at_head() -> None:
    assert migrate.script_head() == HEAD


def test_sqlite_revisions_build_the_schema_a_fresh_file_gets(tmp_path: Path) -> None:
    by_alembic = f"sqlite:///{tmp_path / 'alembic.sqlite3'}"
    migrate.upgrade(by_alembic)
    fresh = tmp_path / "fresh.sqlite3"
    with sqlite3.connect(fresh) as db:
        migrate.create_sqlite(db)
    assert _shape(by_alembic) == _shape(f"sqlite:///{fresh}")


def test_postgres_revisions_build_the_schema_a_fresh_database_gets() -> None:
    with pg.database() as by_alembic, pg.database(migrate=False) as fresh:
        import psycopg

        with psycopg.connect(fresh, autocommit=True) as conn:
            for statement in migrate.create_statements("postgresql"):
                conn.execute(statement)  # type: ignore[call-overload]
        assert _shape(by_alembic) == _shape(fresh)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOCALBOX, *args], capture_output=True, text=True, timeout=120)


def test_serve_refuses_an_outdated_postgres_schema_and_migrate_fixes_it(tmp_path: Path) -> None:
    with pg.database(migrate=False) as url:
        migrate.upgrade(url, "0001")  # what an older release left
        refused = _run("serve", "--database-url", url, "--data-dir", str(tmp_path), "--port", "0")
        assert refused.returncode != 0
        assert "revision 0001" in refused.stderr and f"localbox migrate --database-url '{url}'" in refused.stderr
        refused = _run("account", "create", "a@example.com", "--database-url", url)
        assert refused.returncode != 0 and "localbox migrate" in refused.stderr
        done = _run("migrate", "--database-url", url)
        assert done.returncode == 0 and f"from 0001 to revision {HEAD}" in done.stdout, done.stderr
        assert _run("account", "create", "a@example.com", "--database-url", url).returncode == 0
        assert "already at revision" in _run("migrate", "--database-url", url).stdout


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_data_dir_of_an_earlier_release_upgrades_keeping_every_file(tmp_path: Path, version: int) -> None:
    data = tmp_path / "data"
    files = {f"/docs/f{i}.bin": bytes([i]) * (1000 * i + 7) for i in range(1, 6)}
    files["/big.bin"] = b"x" * (4 * 1024 * 1024 + 5)  # more than one block
    with running_server(data) as srv:
        acct = srv.new_account()
        dbx = make_sdk(srv, acct.token)
        for path, content in files.items():
            dbx.files_upload(content, path)
    make_legacy(data / "metadata.sqlite3", version, [acct.token])
    with running_server(data) as srv:  # the embedded default migrates itself as it opens the file
        dbx = make_sdk(srv, acct.token)
        for path, content in files.items():
            assert dbx.files_download(path)[1].content == content
        assert dbx.users_get_current_account().email == acct.email
    with sqlite3.connect(data / "metadata.sqlite3") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
