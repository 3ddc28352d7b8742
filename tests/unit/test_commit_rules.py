"""commit_file_tx through a real SqliteMetadataStore and LocalDiskBlobStore: Dropbox write-mode rules."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dropbox import files as sdk_files

from localbox.app import Backends, build_services, open_backends
from localbox.config import Settings
from localbox.domain.errors import WriteFailure
from localbox.domain.models import Entry, EntryKind
from localbox.services.accounts import ALL_SCOPES, Caller
from localbox.services.files import CommitSpec, Content, commit_file_tx

pytestmark = pytest.mark.unit

MIB4 = 4 * 1024 * 1024
NOW = 1_700_000_000.0


def oracle_hash(data: bytes) -> str:
    digests = b"".join(hashlib.sha256(data[i : i + MIB4]).digest() for i in range(0, len(data), MIB4))
    return hashlib.sha256(digests).hexdigest()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class World:
    backends: Backends
    caller: Caller

    @property
    def ns(self) -> str:
        return self.caller.namespace_id

    def content(self, data: bytes) -> Content:
        blocks, size = asyncio.run(self.backends.blobs.put_blocks(_once(data), 1 << 30))
        return Content(size=size, blocks=blocks)

    def commit(self, path: str, data: bytes, mode: str = "add", **kw: Any) -> Entry:
        spec = CommitSpec(path=path, mode=mode, **kw)
        content = self.content(data)
        return self.backends.metadata.run_sync(lambda tx: commit_file_tx(tx, self.caller, spec, content, NOW))

    def fails(self, path: str, data: bytes, mode: str = "add", **kw: Any) -> tuple[str, ...]:
        with pytest.raises(WriteFailure) as e:
            self.commit(path, data, mode, **kw)
        return e.value.tags

    def get(self, path_lower: str) -> Entry | None:
        return self.backends.metadata.run_sync(lambda tx: tx.get_entry(self.ns, path_lower))

    def seq(self) -> int:
        return self.backends.metadata.run_sync(lambda tx: tx.current_seq(self.ns))

    def read(self, e: Entry) -> bytes:
        async def go() -> bytes:
            return b"".join([c async for c in self.backends.blobs.open(e.blocks, e.size, 0, e.size)])

        return asyncio.run(go())


@pytest.fixture()
def w(tmp_path: Path) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path)
    backends = open_backends(settings)
    services = build_services(settings, backends)
    account = services.accounts.create_account("ann@example.com", "Ann Example")
    yield World(backends, Caller(account, ALL_SCOPES, account.root_namespace_id))
    asyncio.run(backends.metadata.close())


def is_valid_rev(rev: str) -> bool:
    try:
        sdk_files.Rev_validator.validate(rev)
    except Exception:
        return False
    return True


# -- add -----------------------------------------------------------------------------------------
def test_add_new_file_creates_missing_parents(w: World) -> None:
    e = w.commit("/Docs/Sub/Report.PDF", b"hello")
    assert (e.path_display, e.path_lower, e.name) == ("/Docs/Sub/Report.PDF", "/docs/sub/report.pdf", "Report.PDF")
    assert e.kind == EntryKind.FILE
    assert e.size == 5
    assert e.content_hash == "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
    assert e.id.startswith("id:") and len(e.id) > 3
    assert is_valid_rev(e.rev)
    assert e.server_modified == NOW and e.client_modified == NOW
    assert w.read(e) == b"hello"
    for lower, display in [("/docs", "/Docs"), ("/docs/sub", "/Docs/Sub")]:
        folder = w.get(lower)
        assert folder is not None and folder.kind == EntryKind.FOLDER and folder.path_display == display
    assert w.get("/docs/sub/report.pdf") == e
    assert w.seq() == 3  # two folders and one file, one change each


def test_new_file_takes_the_existing_parents_case(w: World) -> None:
    w.commit("/Docs/a.txt", b"1")
    e = w.commit("/DOCS/B.txt", b"2")
    assert e.path_display == "/Docs/B.txt"
    assert e.path_lower == "/docs/b.txt"


def test_add_conflicts_with_a_different_file(w: World) -> None:
    first = w.commit("/a.txt", b"one")
    seq = w.seq()
    assert w.fails("/a.txt", b"two") == ("conflict", "file")
    assert w.fails("/A.TXT", b"two") == ("conflict", "file")  # case-insensitive
    assert w.get("/a.txt") == first
    assert w.seq() == seq


def test_add_identical_content_is_not_a_conflict(w: World) -> None:
    first = w.commit("/a.txt", b"same")
    seq = w.seq()
    again = w.commit("/a.txt", b"same")
    assert (again.id, again.rev) == (first.id, first.rev)
    assert w.seq() == seq
    assert w.commit("/a.txt", b"same", autorename=True).rev == first.rev  # no renamed copy either
    assert w.get("/a (1).txt") is None


def test_add_identical_content_with_strict_conflict_conflicts(w: World) -> None:
    w.commit("/a.txt", b"same")
    assert w.fails("/a.txt", b"same", strict_conflict=True) == ("conflict", "file")


def test_add_autorename_numbering(w: World) -> None:
    w.commit("/dir/a.txt", b"0")
    one = w.commit("/dir/a.txt", b"1", autorename=True)
    two = w.commit("/dir/a.txt", b"2", autorename=True)
    assert one.path_display == "/dir/a (1).txt"
    assert two.path_display == "/dir/a (2).txt"
    assert one.name == "a (1).txt" and one.path_lower == "/dir/a (1).txt"
    assert w.read(two) == b"2"
    assert w.read(w.get("/dir/a.txt")) == b"0"  # type: ignore[arg-type]


def test_autorename_of_dot_file_and_case(w: World) -> None:
    w.commit("/.bashrc", b"0")
    assert w.commit("/.bashrc", b"1", autorename=True).path_display == "/.bashrc (1)"
    w.commit("/Docs/A.txt", b"0")
    e = w.commit("/docs/a.TXT", b"1", autorename=True)
    assert e.path_display == "/Docs/a (1).TXT"
    assert w.fails("/docs/A (1).txt", b"2") == ("conflict", "file")


def test_autorename_skips_taken_numbers(w: World) -> None:
    w.commit("/a.txt", b"0")
    w.commit("/a (1).txt", b"x")
    w.commit("/A (2).TXT", b"y")
    assert w.commit("/a.txt", b"1", autorename=True).path_display == "/a (3).txt"


# -- overwrite -----------------------------------------------------------------------------------
def test_overwrite_keeps_id_and_changes_rev(w: World) -> None:
    first = w.commit("/Docs/A.txt", b"one")
    second = w.commit("/docs/a.txt", b"two!", "overwrite", client_modified=123.0)
    assert second.id == first.id
    assert second.rev != first.rev and is_valid_rev(second.rev)
    assert second.path_display == "/Docs/A.txt"  # the entry keeps its case
    assert (second.size, second.content_hash) == (4, oracle_hash(b"two!"))
    assert second.client_modified == 123.0
    assert w.get("/docs/a.txt") == second
    assert w.read(second) == b"two!"


def test_overwrite_new_path_creates(w: World) -> None:
    e = w.commit("/new.txt", b"x", "overwrite")
    assert e.path_display == "/new.txt"


def test_overwrite_identical_content_keeps_rev(w: World) -> None:
    first = w.commit("/a.txt", b"same")
    assert w.commit("/a.txt", b"same", "overwrite").rev == first.rev


# -- update --------------------------------------------------------------------------------------
def test_update_with_current_rev_replaces(w: World) -> None:
    first = w.commit("/a.txt", b"one")
    second = w.commit("/a.txt", b"two", "update", rev=first.rev)
    assert second.id == first.id and second.rev != first.rev
    assert w.read(second) == b"two"


def test_update_with_stale_rev_conflicts(w: World) -> None:
    first = w.commit("/a.txt", b"one")
    w.commit("/a.txt", b"two", "update", rev=first.rev)
    assert w.fails("/a.txt", b"three", "update", rev=first.rev) == ("conflict", "file")


def test_update_stale_rev_autorename_makes_conflicted_copies(w: World) -> None:
    first = w.commit("/d/a.txt", b"one")
    w.commit("/d/a.txt", b"two", "update", rev=first.rev)
    c1 = w.commit("/d/a.txt", b"three", "update", rev=first.rev, autorename=True)
    c2 = w.commit("/d/a.txt", b"four", "update", rev=first.rev, autorename=True)
    assert c1.path_display == "/d/a (conflicted copy).txt"
    assert c2.path_display == "/d/a (conflicted copy 2).txt"
    assert w.read(w.get("/d/a.txt")) == b"two"  # type: ignore[arg-type]


def test_update_stale_rev_identical_content_is_not_a_conflict(w: World) -> None:
    first = w.commit("/a.txt", b"one")
    second = w.commit("/a.txt", b"two", "update", rev=first.rev)
    same = w.commit("/a.txt", b"two", "update", rev=first.rev)
    assert same.rev == second.rev
    assert w.fails("/a.txt", b"two", "update", rev=first.rev, strict_conflict=True) == ("conflict", "file")


def test_update_of_missing_file(w: World) -> None:
    assert w.fails("/gone.txt", b"x", "update", rev="0123456789", strict_conflict=True) == ("conflict", "file")
    e = w.commit("/gone.txt", b"x", "update", rev="0123456789")
    assert e.path_display == "/gone.txt"


# -- folders and ancestors -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["add", "overwrite"])
def test_folder_conflict(w: World, mode: str) -> None:
    w.commit("/Docs/a.txt", b"0")
    assert w.fails("/docs", b"x", mode) == ("conflict", "folder")
    assert w.get("/docs").kind == EntryKind.FOLDER  # type: ignore[union-attr]
    renamed = w.commit("/docs", b"x", mode, autorename=True)
    assert renamed.path_display == "/docs (1)"


def test_folder_conflict_in_update_mode(w: World) -> None:
    w.commit("/Docs/a.txt", b"0")
    assert w.fails("/Docs", b"x", "update", rev="0123456789") == ("conflict", "folder")


@pytest.mark.parametrize("path", ["/f.txt/x", "/f.txt/x/y", "/F.TXT/x"])
def test_file_ancestor_conflict(w: World, path: str) -> None:
    w.commit("/f.txt", b"file")
    seq = w.seq()
    assert w.fails(path, b"x") == ("conflict", "file_ancestor")
    assert w.fails(path, b"x", "overwrite", autorename=True) == ("conflict", "file_ancestor")
    assert w.get("/f.txt/x") is None
    assert w.seq() == seq


def test_file_ancestor_deep(w: World) -> None:
    w.commit("/a/b.txt", b"file")
    assert w.fails("/a/b.txt/c/d.txt", b"x") == ("conflict", "file_ancestor")
    assert w.get("/a/b.txt/c") is None


def test_deleted_entry_does_not_block(w: World) -> None:
    dead = Entry(namespace_id=w.ns, path_lower="/x.txt", path_display="/x.txt", name="x.txt",
                 kind=EntryKind.DELETED, id="id:old", seq=0)
    w.backends.metadata.run_sync(lambda tx: tx.put_entry(dead))
    e = w.commit("/x.txt", b"new")
    assert e.kind == EntryKind.FILE and e.id != "id:old"


# -- addressing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "", "/a/", "/a//b", "/../a", "ns:abc/a"])
def test_malformed_paths(w: World, path: str) -> None:
    assert w.fails(path, b"x") == ("malformed_path",)


def test_namespace_prefix(w: World) -> None:
    e = w.commit(f"ns:{w.ns}/in-ns.txt", b"x")
    assert e.namespace_id == w.ns and e.path_display == "/in-ns.txt"
    assert w.fails("ns:1/x.txt", b"x") == ("no_write_permission",)


def test_id_path_overwrites_that_file(w: World) -> None:
    first = w.commit("/Docs/A.txt", b"one")
    second = w.commit(first.id, b"two", "overwrite")
    assert (second.id, second.path_display) == (first.id, "/Docs/A.txt")
    assert w.read(second) == b"two"
    assert w.fails("id:doesnotexist", b"x", "overwrite") == ("malformed_path",)


def test_revs_are_distinct_and_valid(w: World) -> None:
    revs = [w.commit("/r.txt", bytes([i]), "overwrite").rev for i in range(5)]
    assert len(set(revs)) == 5
    assert all(is_valid_rev(r) for r in revs)


def test_large_content_hash_matches_oracle(w: World) -> None:
    data = bytes(range(256)) * (MIB4 // 256) + b"tail"
    e = w.commit("/big.bin", data)
    assert e.size == len(data)
    assert e.content_hash == oracle_hash(data)
    assert len(e.blocks) == 2
