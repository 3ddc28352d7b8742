"""Debian's rclone (1.60) end to end against localbox over HTTPS, reached through the CONNECT proxy.

Every result rclone reports is checked a second way on the server, through the Python SDK: names (with their
case and non-ASCII characters), sizes, Dropbox content hashes computed here, modification times, revs.
"""

from __future__ import annotations

import json
import os
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clients_harness import Client, dropbox_content_hash

MiB = 1024 * 1024
MTIME0 = 1_700_000_000
BIG = random.Random(3).randbytes(2 * MiB + 123_457)  # three 1M chunks
TREE: dict[str, bytes] = {
    "top.txt": b"hello from rclone\n",
    "empty.txt": b"",
    "café ☺.txt": "non-ASCII name, non-ASCII text: ☺ é\n".encode(),
    "nested/one.txt": b"one\n" * 100,
    "nested/deeper/two.txt": b"two\n",
    "nested/deeper/big.bin": BIG,
}
DIRS = {"nested", "nested/deeper"}


def write_tree(root: Path, tree: dict[str, bytes] = TREE) -> Path:
    # Whole-second mtimes, one per file: Dropbox keeps client_modified to the second, so they round-trip exactly.
    for i, (rel, data) in enumerate(sorted(tree.items())):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (MTIME0 + i * 3601, MTIME0 + i * 3601))
    return root


def put(p: Path, data: bytes) -> None:
    """Changes a file the way an edit would: new bytes, a later (whole-second) mtime."""
    p.write_bytes(data)
    os.utime(p, (MTIME0 + 10**6, MTIME0 + 10**6))


def utc_mtime(p: Path) -> datetime:
    return datetime.fromtimestamp(p.stat().st_mtime, UTC).replace(tzinfo=None)


def assert_server_has(dbx: Any, remote_root: str, src: Path, tree: dict[str, bytes] = TREE) -> None:
    import dropbox

    for rel, data in tree.items():
        md = dbx.files_get_metadata(f"{remote_root}/{rel}")
        assert isinstance(md, dropbox.files.FileMetadata), rel
        assert md.path_display == f"{remote_root}/{rel}"
        assert md.name == rel.rsplit("/", 1)[-1]
        assert md.size == len(data), rel
        assert md.content_hash == dropbox_content_hash(data), rel
        assert md.client_modified == utc_mtime(src / rel), rel
    _, resp = dbx.files_download(f"{remote_root}/nested/deeper/big.bin")
    assert resp.content == BIG


def assert_not_found(dbx: Any, path: str) -> None:
    import dropbox

    with pytest.raises(dropbox.exceptions.ApiError) as err:
        dbx.files_get_metadata(path)
    assert err.value.error.is_path() and err.value.error.get_path().is_not_found(), err.value.error


def transfers_in(json_log: str) -> int:
    """Files the run transferred, from the last stats line of `--use-json-log --stats-log-level NOTICE`."""
    stats = [json.loads(line)["stats"] for line in json_log.splitlines()
             if line.startswith("{") and '"stats"' in line]
    assert stats, f"no stats in rclone's log:\n{json_log}"
    return int(stats[-1]["transfers"])


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src")


@pytest.fixture()
def uploaded(client: Client, src: Path) -> Path:
    """The tree copied to dbx:tree with rclone's defaults (batch mode sync)."""
    client.rclone.run("copy", str(src), "dbx:tree")
    return src


@pytest.mark.parametrize("mode", ["sync", "async", "off"])
def test_copy_tree_in_each_batch_mode(client: Client, src: Path, mode: str) -> None:
    client.rclone.run("copy", str(src), "dbx:tree", "--dropbox-batch-mode", mode, "--dropbox-chunk-size", "1M")
    assert_server_has(client.dbx, "/tree", src)
    # rclone compares the content_hash of the listing with its own hash of each local file.
    out = client.rclone.run("check", str(src), "dbx:tree")
    assert "0 differences found" in out.stderr
    assert f"{len(TREE)} matching files" in out.stderr


def test_second_copy_transfers_nothing(client: Client, uploaded: Path) -> None:
    revs = {rel: client.dbx.files_get_metadata(f"/tree/{rel}").rev for rel in TREE}
    out = client.rclone.run("copy", str(uploaded), "dbx:tree", "-v", "--use-json-log",
                            "--stats-log-level", "NOTICE", "--stats", "1h")
    assert transfers_in(out.stderr) == 0, out.stderr
    assert "Copied" not in out.stderr
    assert {rel: client.dbx.files_get_metadata(f"/tree/{rel}").rev for rel in TREE} == revs
    # The same check holds against an independent count: a changed file is exactly one transfer.
    put(uploaded / "top.txt", b"changed\n")
    out = client.rclone.run("copy", str(uploaded), "dbx:tree", "-v", "--use-json-log",
                            "--stats-log-level", "NOTICE", "--stats", "1h")
    assert transfers_in(out.stderr) == 1, out.stderr


def test_lsjson_recursive_lists_the_tree_with_hashes_and_times(client: Client, uploaded: Path) -> None:
    listing = client.rclone.lsjson("-R", "--hash", "dbx:tree")
    by_path = {e["Path"]: e for e in listing}
    assert set(by_path) == set(TREE) | DIRS
    for d in DIRS:
        assert by_path[d]["IsDir"] is True
    for rel, data in TREE.items():
        e = by_path[rel]
        assert e["IsDir"] is False and e["Name"] == rel.rsplit("/", 1)[-1]
        assert e["Size"] == len(data)
        assert e["Hashes"]["dropbox"] == dropbox_content_hash(data)
        listed = datetime.fromisoformat(e["ModTime"].replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
        assert listed == utc_mtime(uploaded / rel)
        assert e["ID"] == client.dbx.files_get_metadata(f"/tree/{rel}").id


def test_about_reports_the_space_usage(client: Client, uploaded: Path) -> None:
    about = json.loads(client.rclone.run("about", "dbx:", "--json").stdout)
    usage = client.dbx.users_get_space_usage()
    assert about["used"] == usage.used == sum(len(d) for d in TREE.values())
    assert about["total"] == usage.allocation.get_individual().allocated
    assert about["free"] == about["total"] - about["used"]


def test_mkdir_creates_nested_folders(client: Client) -> None:
    import dropbox

    client.rclone.run("mkdir", "dbx:made/Inner Dir")
    md = client.dbx.files_get_metadata("/made/inner dir")
    assert isinstance(md, dropbox.files.FolderMetadata)
    assert md.path_display == "/made/Inner Dir"
    [listed] = client.rclone.lsjson("dbx:made")
    # Dropbox folders carry no time: rclone shows the time of the listing, so ModTime is not compared.
    del listed["ModTime"]
    assert listed == {"Path": "Inner Dir", "Name": "Inner Dir", "Size": -1, "MimeType": "inode/directory",
                      "IsDir": True, "ID": md.id}
    client.rclone.run("mkdir", "dbx:made/Inner Dir")  # already there: rclone treats it as done


def test_moveto_renames_and_keeps_the_file(client: Client, uploaded: Path) -> None:
    before = client.dbx.files_get_metadata("/tree/top.txt")
    client.rclone.run("moveto", "dbx:tree/top.txt", "dbx:moved/Renamed ☺.txt")
    assert_not_found(client.dbx, "/tree/top.txt")
    after = client.dbx.files_get_metadata("/moved/renamed ☺.txt")
    assert after.path_display == "/moved/Renamed ☺.txt"
    assert (after.id, after.content_hash, after.size) == (before.id, before.content_hash, before.size)
    assert client.rclone.run("cat", "dbx:moved/Renamed ☺.txt").stdout.encode() == TREE["top.txt"]


def test_deletefile_removes_one_file(client: Client, uploaded: Path) -> None:
    client.rclone.run("deletefile", "dbx:tree/café ☺.txt")
    assert_not_found(client.dbx, "/tree/café ☺.txt")
    assert {e["Path"] for e in client.rclone.lsjson("dbx:tree")} == {"top.txt", "empty.txt", "nested"}
    client.dbx.files_get_metadata("/tree/top.txt")  # the rest is untouched


def test_cat_downloads_exact_bytes(client: Client, uploaded: Path) -> None:
    # rclone downloads by file id (`id:...`), so this also covers id paths in files/download.
    big = client.rclone.run_bytes("cat", "dbx:tree/nested/deeper/big.bin")
    assert big == BIG
    assert client.rclone.run_bytes("cat", "dbx:tree/café ☺.txt") == TREE["café ☺.txt"]
    assert client.rclone.run_bytes("cat", "dbx:tree/empty.txt") == b""
    assert client.rclone.run_bytes("cat", "--offset", "1000", "--count", "10", "dbx:tree/nested/deeper/big.bin") \
        == BIG[1000:1010]


def test_sync_deletes_remote_files_and_updates_changed_ones(client: Client, uploaded: Path) -> None:
    (uploaded / "nested/one.txt").unlink()
    (uploaded / "nested/deeper/two.txt").unlink()
    put(uploaded / "top.txt", b"top, second version\n")
    put(uploaded / "new.txt", b"new\n")
    client.rclone.run("sync", str(uploaded), "dbx:tree")
    assert_not_found(client.dbx, "/tree/nested/one.txt")
    assert_not_found(client.dbx, "/tree/nested/deeper/two.txt")
    now = {k: v for k, v in TREE.items() if k not in ("nested/one.txt", "nested/deeper/two.txt")}
    now |= {"top.txt": b"top, second version\n", "new.txt": b"new\n"}
    assert_server_has(client.dbx, "/tree", uploaded, now)
    out = client.rclone.run("check", str(uploaded), "dbx:tree")
    assert f"{len(now)} matching files" in out.stderr and "0 differences found" in out.stderr


def test_non_ascii_names_round_trip_through_listing(client: Client, uploaded: Path) -> None:
    names = {e["Name"] for e in client.rclone.lsjson("dbx:tree")}
    assert "café ☺.txt" in names
    # rclone sends raw UTF-8 in Dropbox-API-Arg; the name the SDK sees must be the same code points.
    entries = client.dbx.files_list_folder("/tree").entries
    assert "café ☺.txt" in {e.name for e in entries}
    assert re.fullmatch(r"id:.+", client.dbx.files_get_metadata("/tree/café ☺.txt").id)
