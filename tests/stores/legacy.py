"""Fixture generator: turn a data dir made by the current code into what a release before Alembic left
(SQLite meta.schema_version 1, 2 or 3, no alembic_version table), so that upgrade tests start from
real data instead of a committed binary.

    python tests/stores/legacy.py DATA_DIR VERSION [TOKEN ...]

Version 3 is the last schema before Alembic (tokens stored as SHA-256); 2 also stored tokens in clear
(pass the secrets, which the current code never keeps); 1 also had no quota and no byte counter.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

# Objects added by Alembic revisions after the baseline (0002-0005) and by the baseline's own new indexes.
_NEWER_COLUMNS = {"sessions": ("lock_owner", "lock_until"), "jobs": ("owner", "lease_until", "run_after"),
                  "team_members": ("suspended",)}
_NEWER_INDEXES = ("accounts_email_lower", "teams_name_lower", "sessions_account")
_NEWER_TABLES = ("rate_buckets",)


def make_legacy(db_path: Path, version: int, tokens: Sequence[str] = ()) -> None:
    db = sqlite3.connect(db_path)
    try:
        db.execute("DROP TABLE alembic_version")
        for table in _NEWER_TABLES:
            db.execute(f"DROP TABLE {table}")
        for index in _NEWER_INDEXES:
            db.execute(f"DROP INDEX IF EXISTS {index}")
        for table, columns in _NEWER_COLUMNS.items():
            for column in columns:
                db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        if version < 3:  # tokens in clear, in a column named token, without created/prefix
            by_hash = {hashlib.sha256(t.encode()).hexdigest(): t for t in tokens}
            for (token_hash,) in db.execute("SELECT token_hash FROM tokens").fetchall():
                db.execute("UPDATE tokens SET token_hash=? WHERE token_hash=?",
                           (by_hash.get(token_hash, token_hash), token_hash))
            db.execute("ALTER TABLE tokens DROP COLUMN created")
            db.execute("ALTER TABLE tokens DROP COLUMN prefix")
            db.execute("DROP INDEX IF EXISTS tokens_account")
            db.execute("ALTER TABLE tokens RENAME COLUMN token_hash TO token")
            db.execute("CREATE INDEX tokens_account ON tokens (account_id)")
        if version < 2:
            db.execute("ALTER TABLE accounts DROP COLUMN quota")
            db.execute("ALTER TABLE namespaces DROP COLUMN bytes_used")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),))
        db.commit()
    finally:
        db.close()


if __name__ == "__main__":
    make_legacy(Path(sys.argv[1]) / "metadata.sqlite3", int(sys.argv[2]), sys.argv[3:])
