"""Commit semantics shared by files/upload, upload_session/finish and the finish_batch routes:
write modes, autorename, strict_conflict, conflicts, implicit parents, case rules, revs and ids."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from dropbox import files
from sdk_helpers import (
    api_error,
    assert_file,
    blob,
    commit,
    content_hash,
    cursor,
    download,
    finish_arg,
    list_all,
    run_batch,
    start_closed,
    success,
    tag_path,
)

pytestmark = pytest.mark.conformance

ADD = files.WriteMode.add
OVERWRITE = files.WriteMode.overwrite


def update(rev: str) -> files.WriteMode:
    return files.WriteMode.update(rev)


# Each commit path exercised three ways: single-shot upload, session finish, finish_batch_v2 entry.
def _write(dbx, how: str, data: bytes, path: str, mode=None, autorename=False, strict_conflict=False):
    """Returns FileMetadata or raises ApiError whose .error tag path is normalised via _err."""
    mode = mode or ADD
    if how == "upload":
        return dbx.files_upload(data, path, mode=mode, autorename=autorename, strict_conflict=strict_conflict)
    sid = start_closed(dbx, data)
    if how == "finish":
        return dbx.files_upload_session_finish(
            b"", cursor(sid, len(data)), commit(path, mode, autorename, strict_conflict))
    (entry,) = run_batch(dbx, [finish_arg(sid, len(data), path, mode=mode, autorename=autorename,
                                          strict_conflict=strict_conflict)])
    if entry.is_failure():
        raise _BatchFailure(tag_path(entry.get_failure()))
    return entry.get_success()


class _BatchFailure(Exception):
    def __init__(self, tags: str) -> None:
        super().__init__(tags)
        self.tags = tags


def _write_err(dbx, how: str, *args, **kwargs) -> str:
    """Tag path of the write failure (same shape for all three routes: path/conflict/...)."""
    from dropbox.exceptions import ApiError

    try:
        md = _write(dbx, how, *args, **kwargs)
    except ApiError as e:
        return tag_path(e.error)
    except _BatchFailure as e:
        return e.tags
    raise AssertionError(f"expected a write failure, got {md!r}")


HOW = ["upload", "finish", "batch"]


@pytest.mark.parametrize("how", HOW)
def test_add_conflict_and_autorename_first_free_number(dbx, how: str) -> None:
    a = blob(10, "a")
    assert_file(_write(dbx, how, a, "/ar/doc.txt"), "/ar/doc.txt", a)
    b = blob(10, "b")
    assert _write_err(dbx, how, b, "/ar/doc.txt") == "path/conflict/file"
    assert download(dbx, "/ar/doc.txt")[1] == a
    assert_file(_write(dbx, how, b, "/ar/doc.txt", autorename=True), "/ar/doc (1).txt", b)
    # "(2)" taken by a real file: the next autorename skips it, then takes the first free number
    c2 = blob(10, "c2")
    _write(dbx, how, c2, "/ar/doc (2).txt")
    c = blob(10, "c")
    assert_file(_write(dbx, how, c, "/ar/doc.txt", autorename=True), "/ar/doc (3).txt", c)
    d = blob(10, "d")
    # a name without extension
    _write(dbx, how, d, "/ar/README")
    e = blob(10, "e")
    assert_file(_write(dbx, how, e, "/ar/README", autorename=True), "/ar/README (1)", e)
    names = sorted(m.name for m in list_all(dbx, "/ar"))
    assert names == sorted(["doc.txt", "doc (1).txt", "doc (2).txt", "doc (3).txt", "README", "README (1)"])


def test_autorename_fills_gap(dbx) -> None:
    dbx.files_upload(b"0", "/gap/f.txt")
    dbx.files_upload(b"2", "/gap/f (2).txt")
    md = dbx.files_upload(b"new", "/gap/f.txt", autorename=True)
    assert md.name == "f (1).txt"


@pytest.mark.parametrize("how", HOW)
def test_identical_content_is_not_a_conflict(dbx, how: str) -> None:
    data = blob(50, "same")
    first = _write(dbx, how, data, "/same/x.bin")
    again = _write(dbx, how, data, "/same/x.bin")  # mode add, no autorename
    assert_file(again, "/same/x.bin", data)
    assert again.id == first.id
    assert again.rev == first.rev, "identical content is not a write: Dropbox returns the existing revision"
    # autorename does not kick in either
    renamed = _write(dbx, how, data, "/same/x.bin", autorename=True)
    assert renamed.path_display == "/same/x.bin"
    assert [m.name for m in list_all(dbx, "/same")] == ["x.bin"]


@pytest.mark.parametrize("how", HOW)
def test_strict_conflict_makes_identical_content_conflict(dbx, how: str) -> None:
    data = blob(50, "strict")
    _write(dbx, how, data, "/strict/x.bin")
    assert _write_err(dbx, how, data, "/strict/x.bin", strict_conflict=True) == "path/conflict/file"
    md = _write(dbx, how, data, "/strict/x.bin", strict_conflict=True, autorename=True)
    assert_file(md, "/strict/x (1).bin", data)


@pytest.mark.parametrize("how", HOW)
def test_overwrite_keeps_id_and_gets_new_rev(dbx, how: str) -> None:
    v1, v2, v3 = blob(10, "v1"), blob(2000, "v2"), blob(1, "3")
    m1 = _write(dbx, how, v1, "/ow/file.dat", mode=OVERWRITE)  # overwrite onto nothing creates
    m2 = _write(dbx, how, v2, "/ow/file.dat", mode=OVERWRITE)
    m3 = _write(dbx, how, v3, "/ow/file.dat", mode=OVERWRITE)
    assert_file(m3, "/ow/file.dat", v3)
    assert m1.id == m2.id == m3.id
    assert len({m1.rev, m2.rev, m3.rev}) == 3
    md, body, _ = download(dbx, "/ow/file.dat")
    assert body == v3 and md.rev == m3.rev
    assert [m.name for m in list_all(dbx, "/ow")] == ["file.dat"]


@pytest.mark.parametrize("how", HOW)
def test_update_with_current_and_stale_rev(dbx, how: str) -> None:
    v1 = blob(30, "v1")
    m1 = _write(dbx, how, v1, "/up/doc.txt")
    v2 = blob(31, "v2")
    m2 = _write(dbx, how, v2, "/up/doc.txt", mode=update(m1.rev))
    assert_file(m2, "/up/doc.txt", v2)
    assert m2.id == m1.id and m2.rev != m1.rev
    # m1.rev is now stale
    v3 = blob(32, "v3")
    assert _write_err(dbx, how, v3, "/up/doc.txt", mode=update(m1.rev)) == "path/conflict/file"
    assert download(dbx, "/up/doc.txt")[1] == v2
    m3 = _write(dbx, how, v3, "/up/doc.txt", mode=update(m2.rev))
    assert_file(m3, "/up/doc.txt", v3)
    assert len({m1.rev, m2.rev, m3.rev}) == 3


def test_update_identical_content_with_stale_rev_is_not_conflict_unless_strict(dbx) -> None:
    v1 = blob(30, "v1")
    m1 = dbx.files_upload(v1, "/up2/doc.txt")
    v2 = blob(30, "v2")
    dbx.files_upload(v2, "/up2/doc.txt", mode=update(m1.rev))
    md = dbx.files_upload(v2, "/up2/doc.txt", mode=update(m1.rev))
    assert_file(md, "/up2/doc.txt", v2)
    err = api_error(dbx.files_upload, v2, "/up2/doc.txt", mode=update(m1.rev), strict_conflict=True)
    assert tag_path(err) == "path/conflict/file"


@pytest.mark.parametrize("how", HOW)
def test_folder_at_target_is_conflict_folder(dbx, how: str) -> None:
    dbx.files_upload(b"child", "/fold/sub/child.txt")
    for mode in (ADD, OVERWRITE):
        assert _write_err(dbx, how, b"x", "/fold/sub", mode=mode) == "path/conflict/folder"
        assert _write_err(dbx, how, b"x", "/FOLD/SUB", mode=mode) == "path/conflict/folder"
    assert isinstance(dbx.files_get_metadata("/fold/sub"), files.FolderMetadata)


@pytest.mark.parametrize("how", HOW)
def test_file_in_place_of_parent_is_file_ancestor(dbx, how: str) -> None:
    dbx.files_upload(b"i am a file", "/anc/f.txt")
    assert _write_err(dbx, how, b"x", "/anc/f.txt/child.txt") == "path/conflict/file_ancestor"
    assert _write_err(dbx, how, b"x", "/anc/F.TXT/deeper/child.txt") == "path/conflict/file_ancestor"
    assert download(dbx, "/anc/f.txt")[1] == b"i am a file"


@pytest.mark.parametrize("how", HOW)
def test_missing_parents_are_created(dbx, how: str) -> None:
    data = blob(7)
    assert_file(_write(dbx, how, data, "/p1/p2/p3/leaf.txt"), "/p1/p2/p3/leaf.txt", data)
    for folder in ("/p1", "/p1/p2", "/p1/p2/p3"):
        md = dbx.files_get_metadata(folder)
        assert isinstance(md, files.FolderMetadata)
        assert md.path_display == folder and md.name == folder.rsplit("/", 1)[-1]
        assert md.id.startswith("id:")
    (p2,) = list_all(dbx, "/p1")
    assert isinstance(p2, files.FolderMetadata) and p2.name == "p2"
    assert {m.name for m in list_all(dbx, "")} == {"p1"}


def test_paths_case_insensitive_case_preserving(dbx) -> None:
    data = blob(12, "case")
    md = dbx.files_upload(data, "/CaseDir/MixedName.TXT")
    assert_file(md, "/CaseDir/MixedName.TXT", data)
    got = dbx.files_get_metadata("/casedir/mixedname.txt")
    assert got.path_display == "/CaseDir/MixedName.TXT" and got.path_lower == "/casedir/mixedname.txt"
    assert got.id == md.id
    assert download(dbx, "/CASEDIR/MIXEDNAME.txt")[1] == data
    # same path in another case is the same file: add conflicts, overwrite keeps the id
    err = api_error(dbx.files_upload, b"different", "/casedir/MIXEDNAME.txt")
    assert tag_path(err) == "path/conflict/file"
    ow = dbx.files_upload(b"different", "/casedir/MIXEDNAME.txt", mode=OVERWRITE)
    assert ow.id == md.id
    assert ow.path_lower == "/casedir/mixedname.txt"
    assert len([m for m in list_all(dbx, "/CaseDir")]) == 1
    # autorename with a case-variant name still finds the conflict
    ren = dbx.files_upload(b"third", "/CASEDIR/mixedname.txt", autorename=True)
    assert ren.path_lower == "/casedir/mixedname (1).txt"


def test_client_modified_round_trips_and_server_modified_is_now(dbx) -> None:
    when = dt.datetime(2020, 2, 29, 12, 34, 56)
    before = dt.datetime.utcnow().replace(microsecond=0) - dt.timedelta(seconds=5)
    md = dbx.files_upload(b"t", "/time.txt", client_modified=when)
    after = dt.datetime.utcnow() + dt.timedelta(seconds=5)
    assert md.client_modified == when
    assert before <= md.server_modified <= after
    # finish carries client_modified too
    sid = start_closed(dbx, b"u")
    ci = files.CommitInfo(path="/time2.txt", client_modified=when)
    assert dbx.files_upload_session_finish(b"", cursor(sid, 1), ci).client_modified == when
    # without client_modified it defaults to the server time
    md2 = dbx.files_upload(b"v", "/time3.txt")
    assert before <= md2.client_modified <= after


def test_bare_commit_info_uses_spec_defaults(dbx) -> None:
    # CommitInfo(path) omits mode/autorename/mute/strict_conflict on the wire: server must apply defaults
    sid = start_closed(dbx, b"one")
    md = dbx.files_upload_session_finish(b"", cursor(sid, 3), files.CommitInfo(path="/defaults.txt"))
    assert_file(md, "/defaults.txt", b"one")
    sid = start_closed(dbx, b"two")
    err = api_error(dbx.files_upload_session_finish, b"", cursor(sid, 3),
                    files.CommitInfo(path="/defaults.txt"))
    assert tag_path(err) == "path/conflict/file"  # default mode is add, default autorename false


def test_every_write_gets_a_new_rev(dbx) -> None:
    revs = [dbx.files_upload(blob(5, str(i)), "/revs.txt", mode=OVERWRITE).rev for i in range(6)]
    assert len(set(revs)) == 6
    revs += [dbx.files_upload(blob(5, str(i)), f"/revs-{i}.txt").rev for i in range(3)]
    assert len(set(revs)) == 9


@pytest.mark.parametrize("route", ["v1", "v2"])
def test_batch_same_path_twice_applies_in_order(dbx, route: str) -> None:
    a, b, c, d = (blob(20, t) for t in "abcd")
    sids = [start_closed(dbx, x) for x in (a, b, c, d)]
    results = run_batch(dbx, [
        finish_arg(sids[0], 20, "/dup/f.txt"),
        finish_arg(sids[1], 20, "/dup/f.txt"),                    # add, no autorename: conflict with #0
        finish_arg(sids[2], 20, "/dup/F.txt", autorename=True),   # renamed past #0
        finish_arg(sids[3], 20, "/dup/f.txt", mode=OVERWRITE),    # replaces #0
    ], route=route)
    m0 = success(results[0])
    assert_file(m0, "/dup/f.txt", a)
    assert tag_path(results[1].get_failure()) == "path/conflict/file"
    m2 = success(results[2])
    assert m2.path_lower == "/dup/f (1).txt" and m2.content_hash == content_hash(c)
    m3 = success(results[3])
    assert m3.id == m0.id and m3.rev != m0.rev
    assert download(dbx, "/dup/f.txt")[1] == d
    assert download(dbx, "/dup/f (1).txt")[1] == c
    # #1 failed to commit, so its session is still usable
    (again,) = run_batch(dbx, [finish_arg(sids[1], 20, "/dup/g.txt")], route=route)
    assert_file(success(again), "/dup/g.txt", b)


@pytest.mark.parametrize("route", ["v1", "v2"])
def test_batch_same_path_identical_content_twice(dbx, route: str) -> None:
    data = blob(40, "twin")
    sids = [start_closed(dbx, data) for _ in range(2)]
    results = run_batch(dbx, [finish_arg(s, 40, "/twin.bin") for s in sids], route=route)
    m0, m1 = success(results[0]), success(results[1])
    assert_file(m1, "/twin.bin", data)
    assert m0.id == m1.id


@pytest.mark.parametrize("how", HOW)
def test_folder_conflict_with_autorename_renames(dbx, how: str) -> None:
    dbx.files_upload(b"child", "/fa/sub/child.txt")
    data = blob(9, "fa")
    assert_file(_write(dbx, how, data, "/fa/sub", autorename=True), "/fa/sub (1)", data)
    assert isinstance(dbx.files_get_metadata("/fa/sub"), files.FolderMetadata)


def test_autorename_skips_names_taken_by_folders(dbx) -> None:
    dbx.files_upload(b"1", "/sk/x.txt")
    dbx.files_upload(b"k", "/sk/x (1).txt/inner")  # "x (1).txt" is a folder
    assert dbx.files_upload(b"2", "/sk/x.txt", autorename=True).path_display == "/sk/x (2).txt"


def test_write_by_file_id(dbx) -> None:
    md = dbx.files_upload(b"v1", "/byid/file.txt")
    md2 = dbx.files_upload(b"v2", md.id, mode=OVERWRITE)
    assert_file(md2, "/byid/file.txt", b"v2")
    assert md2.id == md.id and md2.rev != md.rev


def test_update_stale_rev_with_autorename_makes_conflicted_copy(dbx) -> None:
    m1 = dbx.files_upload(b"v1", "/cc/report.txt")
    dbx.files_upload(b"v2", "/cc/report.txt", mode=update(m1.rev))
    md = dbx.files_upload(b"v3", "/cc/report.txt", mode=update(m1.rev), autorename=True)
    # WriteMode.update's documented autorename strategy: "document (conflicted copy).txt"
    assert re.fullmatch(r"report \((.+'s )?conflicted copy\)\.txt", md.name), md.name
    assert md.content_hash == content_hash(b"v3")
    assert download(dbx, "/cc/report.txt")[1] == b"v2"
