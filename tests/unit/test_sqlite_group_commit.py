"""Group commit in SqliteMetadataStore: queued writes share one SQLite transaction, each in its own
savepoint, and nobody learns an outcome before the COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localbox.domain.errors import StoreUnavailable
from localbox.stores.sqlite import SqliteMetadataStore

pytestmark = pytest.mark.unit


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SqliteMetadataStore]:
    s = SqliteMetadataStore(tmp_path / "meta.sqlite3")
    yield s
    asyncio.run(s.close())


def _namespaces(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT namespace_id FROM namespaces")}


def test_failing_work_in_a_group_leaves_the_others_committed(store: SqliteMetadataStore) -> None:
    gate = threading.Event()

    def blocker(tx: Any) -> str:
        gate.wait(5)  # hold the writer so that the next submissions queue up into one group
        tx.insert_namespace("1", "a")
        return "first"

    def good(ns: str) -> Any:
        def fn(tx: Any) -> str:
            tx.insert_namespace(ns, "a")
            return ns
        return fn

    def bad(tx: Any) -> None:
        tx.insert_namespace("99", "a")
        raise ValueError("domain failure after a write")

    first = store._submit(blocker)
    others = [store._submit(good("2")), store._submit(bad), store._submit(good("3"))]
    assert not any(f.done() for f in [first, *others])
    gate.set()
    assert first.result(5) == "first"
    assert others[0].result(5) == "2" and others[2].result(5) == "3"
    with pytest.raises(ValueError):
        others[1].result(5)
    # The failed work's own write was rolled back; everything else in its group is durable.
    assert _namespaces(store.path) == {"1", "2", "3"}


def test_sqlite_error_fails_the_group_retryably(store: SqliteMetadataStore) -> None:
    def broken(tx: Any) -> None:
        tx.db.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(StoreUnavailable):
        store.run_sync(broken)
    # The writer survives and keeps committing.
    store.run_sync(lambda tx: tx.insert_namespace("7", "a"))
    assert _namespaces(store.path) == {"7"}


def test_outcomes_are_released_only_after_commit(store: SqliteMetadataStore) -> None:
    seen: list[set[str]] = []

    def write_and_peek(tx: Any) -> None:
        tx.insert_namespace("5", "a")
        seen.append(_namespaces(store.path))  # another connection: must not see it before COMMIT

    store.run_sync(write_and_peek)
    assert seen == [set()]
    assert _namespaces(store.path) == {"5"}
