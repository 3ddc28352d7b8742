"""Seeds a localbox data dir with many file entries through localbox's own metadata store, before it serves.

Uploading a million files over HTTP would take hours; the metadata benchmarks only need the rows.  The rows
are written with ``executemany`` on the store's writer connection (``tx.db``), in the column order of
``_Tx.put_entry`` (localbox/stores/sqlite.py), one transaction per ``BATCH`` rows, sorted by path so the
primary-key index grows at its end.  Files have an empty ``blocks`` blob: their bytes are never downloaded.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BATCH = 20_000
CACHE_KIB = 512 * 1024
BIG_FOLDER = "/big"

# Column order of the ``entries`` table (SCHEMA in localbox/stores/sqlite.py, as ``put_entry`` writes it).
_INSERT = "INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

Row = tuple[str, str, str, str, str, str, str, int, str, int, str, bytes, float, float]


@dataclass(frozen=True, slots=True)
class Layout:
    """``folders`` folders /f<i> of ``per_folder`` files each, plus ``big`` files in /big."""

    folders: int
    per_folder: int
    big: int

    @property
    def files(self) -> int:
        return self.folders * self.per_folder + self.big

    def folder(self, index: int) -> str:
        return f"/f{index}"

    def file_path(self, index: int) -> str:
        """The ``index``-th file (0 <= index < files); the last ``big`` indexes are in /big."""
        small = self.folders * self.per_folder
        if index >= small:
            return f"{BIG_FOLDER}/file{index - small:06d}.txt"
        folder, number = divmod(index, self.per_folder)
        return f"{self.folder(folder)}/file{number:04d}.txt"


@dataclass(frozen=True, slots=True)
class SeedResult:
    files: int
    folders: int
    seconds: float
    db_bytes: int


def _file_id(raw: bytes) -> str:
    return "id:" + base64.urlsafe_b64encode(raw).decode()[:22]


def _rows(layout: Layout, namespace_id: str, first_seq: int, now: float) -> Iterator[Row]:
    """Every folder row followed by its files, in path order within each folder; seq counts up."""
    rng = random.Random(1)
    seq = first_seq
    folders = [layout.folder(i) for i in range(layout.folders)]
    groups = [(folder, layout.per_folder) for folder in folders] + [(BIG_FOLDER, layout.big)]
    for folder, count in groups:
        name = folder[1:]
        seq += 1
        yield (
            namespace_id,
            folder,
            "",
            folder,
            name,
            "folder",
            _file_id(os.urandom(16)),
            seq,
            "",
            0,
            "",
            b"",
            0.0,
            now,
        )
        width = 6 if folder == BIG_FOLDER else 4
        ids = os.urandom(16 * count)
        for number in range(count):
            seq += 1
            leaf = f"file{number:0{width}d}.txt"
            path = f"{folder}/{leaf}"
            size = 1000 + rng.randrange(1_000_000)
            yield (
                namespace_id,
                path,
                folder,
                path,
                leaf,
                "file",
                _file_id(ids[16 * number : 16 * number + 16]),
                seq,
                f"{seq:010x}{rng.getrandbits(64):016x}",
                size,
                f"{seq:064x}",
                b"",
                now,
                now,
            )


def _namespace(tx: Any, email: str) -> tuple[str, int]:
    account = tx.get_account_by_email(email)
    if account is None:
        raise RuntimeError(f"no account {email} to seed")
    namespace_id = str(account.root_namespace_id)
    return namespace_id, int(tx.current_seq(namespace_id))


def _execute(sql: str, args: tuple[Any, ...] = ()) -> Callable[[Any], None]:
    """A store transaction function that runs one statement on the writer connection."""

    def fn(tx: Any) -> None:
        tx.db.execute(sql, args)

    return fn


def _executemany(sql: str, rows: list[Row]) -> Callable[[Any], None]:
    def fn(tx: Any) -> None:
        tx.db.executemany(sql, rows)

    return fn


def _drop_indexes(tx: Any) -> list[str]:
    """Drops the entries table's explicit indexes (not its primary key); returns their CREATE statements."""
    found = tx.db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='entries' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in found:
        tx.db.execute(f'DROP INDEX "{name}"')
    return [str(sql) for _, sql in found]


def seed(data_dir: Path, email: str, layout: Layout) -> SeedResult:
    """Inserts ``layout`` into the account ``email`` of ``data_dir`` (which must exist, server stopped)."""
    from localbox.config import Settings
    from localbox.stores.sqlite import SqliteMetadataStore

    start = time.perf_counter()
    db_path = Settings(data_dir=data_dir).database_path
    store = SqliteMetadataStore(db_path)
    namespace_id, first_seq = store.run_sync(lambda tx: _namespace(tx, email))
    # A cache that holds the random-order id index keeps each batch from re-reading pages (default: 2 MiB).
    store.run_sync(_execute(f"PRAGMA cache_size=-{CACHE_KIB}"))
    # Secondary indexes are dropped and rebuilt afterwards from their own SQL (sqlite_master): building an
    # index from sorted rows is several times faster than a million random-order inserts into it.
    indexes = store.run_sync(_drop_indexes)
    rows = _rows(layout, namespace_id, first_seq, time.time())
    last_seq = first_seq
    while True:
        batch = [row for _, row in zip(range(BATCH), rows, strict=False)]
        if not batch:
            break
        last_seq = batch[-1][7]
        store.run_sync(_executemany(_INSERT, batch))
    store.run_sync(_execute("UPDATE namespaces SET seq=? WHERE namespace_id=?", (last_seq, namespace_id)))
    for sql in indexes:
        store.run_sync(_execute(sql))
    _close(store)
    # Fold the WAL into the database file, so the server starts as it would on a long-lived data dir.
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return SeedResult(
        files=layout.files,
        folders=layout.folders + 1,
        seconds=time.perf_counter() - start,
        db_bytes=sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*")),
    )


def _close(store: Any) -> None:
    """Stops the store's writer thread (its ``close`` is async; this runs outside any event loop)."""
    import asyncio

    asyncio.run(store.close())
