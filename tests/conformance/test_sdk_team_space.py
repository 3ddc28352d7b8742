"""Conformance: the team space as Dropbox mounts it.  With the team root as path root, "" lists the
member homes the caller may see and the team folders, and "/<Home>/..." / "/<Team folder>/..." paths
work in every route inside the mounted namespace, shown under the mount path with sharing_info.
Also suspended members (`localbox team suspend-member`)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dropbox
import pytest
from dropbox import common, files, team
from dropbox.exceptions import ApiError, AuthError, BadInputError
from harness import LocalServer, local_session
from test_sdk_teams import Team, _finish_batch, _make_team, _team_client

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def space(server: LocalServer) -> Team:
    return _make_team(server)


def _homes(dbt: Any, t: Team) -> tuple[str, str]:
    bob = dbt.as_user(t.member_id).users_get_current_account().root_info.home_namespace_id
    ann = dbt.as_user(t.admin_id).users_get_current_account().root_info.home_namespace_id
    return bob, ann


def _at_root(dbt: Any, t: Team, member_id: str) -> Any:
    return dbt.as_user(member_id).with_path_root(common.PathRoot.root(t.root_ns))


def test_team_root_lists_the_callers_mounts(server: LocalServer, space: Team) -> None:
    dbt = _team_client(server, space.token)
    bob_home, _ = _homes(dbt, space)
    bob = _at_root(dbt, space, space.member_id)
    listing = bob.files_list_folder("")
    by_name = {e.name: e for e in listing.entries}
    # Bob sees his own home and the team folder, never Ann's home.
    assert set(by_name) >= {"Bob Member", "Projects"} and "Ann Admin" not in by_name
    for name, ns in (("Bob Member", bob_home), ("Projects", space.folder_ns)):
        e = by_name[name]
        assert isinstance(e, files.FolderMetadata) and e.path_display == f"/{name}"
        assert e.path_lower == f"/{name.lower()}" and e.id.startswith("id:")
        assert e.sharing_info.shared_folder_id == ns and e.shared_folder_id == ns
        assert e.sharing_info.parent_shared_folder_id == space.root_ns and e.parent_shared_folder_id == space.root_ns
        assert not e.sharing_info.read_only and not e.sharing_info.no_access
        got = bob.files_get_metadata(f"/{name}")
        assert isinstance(got, files.FolderMetadata) and got.id == e.id and got.sharing_info.shared_folder_id == ns
        assert bob.files_get_metadata(e.id).path_display == f"/{name}"  # the mount point's id resolves
    with pytest.raises(ApiError) as err:
        bob.files_get_metadata("/Ann Admin")
    assert err.value.error.get_path().is_not_found()
    with pytest.raises(ApiError) as err:
        bob.files_list_folder("/Ann Admin")
    assert err.value.error.get_path().is_not_found()

    # An admin acting on the whole team (Select-Admin on a read route) sees every member's home.
    admin = dbt.as_admin(space.admin_id).with_path_root(common.PathRoot.root(space.root_ns))
    names = {e.name for e in admin.files_list_folder("").entries}
    assert names >= {"Bob Member", "Ann Admin", "Projects"}
    # The admin as a plain member (Select-User) sees only their own home and the team folder.
    names = {e.name for e in _at_root(dbt, space, space.admin_id).files_list_folder("").entries}
    assert "Ann Admin" in names and "Projects" in names and "Bob Member" not in names
    # Without the path root header a member's root is their home: no mounts there.
    assert "Projects" not in {e.name for e in dbt.as_user(space.member_id).files_list_folder("").entries}


def test_paths_under_mounts_work_in_every_route(server: LocalServer, space: Team) -> None:
    dbt = _team_client(server, space.token)
    bob_home, _ = _homes(dbt, space)
    bob = _at_root(dbt, space, space.member_id)

    up = bob.files_upload(b"alpha", "/Projects/routes/a.txt")
    assert up.path_display == "/Projects/routes/a.txt" and up.path_lower == "/projects/routes/a.txt"
    assert up.parent_shared_folder_id == space.folder_ns
    assert up.sharing_info.parent_shared_folder_id == space.folder_ns and not up.sharing_info.read_only
    # The bytes are in the team folder's namespace, where its namespace id reaches them too.
    own = dropbox.Dropbox(space.member.token, session=local_session(server.url), max_retries_on_error=0)
    assert own.files_get_metadata(f"ns:{space.folder_ns}/routes/a.txt").size == 5
    md, resp = bob.files_download("/Projects/routes/a.txt")
    assert resp.content == b"alpha" and md.path_display == "/Projects/routes/a.txt"

    # Upload sessions: finish, and finish_batch into both kinds of mount.
    sid = bob.files_upload_session_start(b"be", close=False).session_id
    bob.files_upload_session_append_v2(b"ta", files.UploadSessionCursor(sid, 2), close=True)
    fin = bob.files_upload_session_finish(b"", files.UploadSessionCursor(sid, 4),
                                          files.CommitInfo("/Projects/routes/b.txt"))
    assert fin.path_display == "/Projects/routes/b.txt"
    done = _finish_batch(bob, {"/Projects/routes/c.txt": b"gamma", "/Bob Member/routes/d.txt": b"delta"})
    assert [m.path_display for m in done] == ["/Projects/routes/c.txt", "/Bob Member/routes/d.txt"]
    assert done[1].parent_shared_folder_id == bob_home
    # Bob's home is the same namespace as his default root.
    assert dbt.as_user(space.member_id).files_get_metadata("/routes/d.txt").size == 5

    # Listings, recursive, and their cursors stay under the mount path.
    flat = bob.files_list_folder("/Projects/routes")
    assert {e.path_display for e in flat.entries} == {f"/Projects/routes/{n}.txt" for n in "abc"}
    deep = bob.files_list_folder("/Projects", recursive=True)
    shown = [e.path_display for e in deep.entries]
    assert shown[0] == "/Projects" and "/Projects/routes" in shown and "/Projects/routes/c.txt" in shown
    assert all(p.startswith("/Projects") for p in shown)
    cursor = bob.files_list_folder_get_latest_cursor("/Projects/routes").cursor

    # Folders, moves and copies within the namespace, deletes.
    folder = bob.files_create_folder_v2("/Projects/routes/sub").metadata
    assert folder.path_display == "/Projects/routes/sub"
    assert folder.sharing_info.parent_shared_folder_id == space.folder_ns
    moved = bob.files_move_v2("/Projects/routes/b.txt", "/Projects/routes/sub/b.txt").metadata
    assert moved.path_display == "/Projects/routes/sub/b.txt"
    copied = bob.files_copy_v2("/Projects/routes/a.txt", "/Projects/routes/a2.txt").metadata
    assert copied.path_display == "/Projects/routes/a2.txt"
    deleted = bob.files_delete_v2("/Projects/routes/c.txt").metadata
    assert deleted.path_display == "/Projects/routes/c.txt"
    changes = bob.files_list_folder_continue(cursor)
    assert {e.path_display for e in changes.entries} >= {"/Projects/routes/sub", "/Projects/routes/a2.txt",
                                                         "/Projects/routes/c.txt", "/Projects/routes/b.txt"}
    assert isinstance({e.path_display: e for e in changes.entries}["/Projects/routes/c.txt"], files.DeletedMetadata)

    # Across namespaces (a member's home into a team folder and back) a move is a move, as in Dropbox.
    across = bob.files_move_v2("/Bob Member/routes/d.txt", "/Projects/routes/d.txt").metadata
    assert across.path_display == "/Projects/routes/d.txt" and across.parent_shared_folder_id == space.folder_ns
    with pytest.raises(ApiError):
        dbt.as_user(space.member_id).files_get_metadata("/routes/d.txt")
    back = bob.files_copy_v2("/Projects/routes/d.txt", "/Bob Member/routes/d-copy.txt").metadata
    assert back.path_display == "/Bob Member/routes/d-copy.txt"
    assert dbt.as_user(space.member_id).files_download("/routes/d-copy.txt")[1].content == b"delta"

    # A mount point is a folder: it cannot be written over, deleted or moved through files/.
    with pytest.raises(ApiError) as err:
        bob.files_upload(b"x", "/Projects")
    assert err.value.error.get_path().reason.get_conflict().is_folder()
    with pytest.raises(ApiError) as err:
        bob.files_create_folder_v2("/Projects")
    assert err.value.error.get_path().get_conflict().is_folder()
    with pytest.raises(ApiError) as err:
        bob.files_delete_v2("/Projects")
    assert err.value.error.get_path_write().is_team_folder()
    with pytest.raises(ApiError) as err:
        bob.files_move_v2("/Projects", "/Elsewhere")
    assert err.value.error.get_from_write().is_team_folder()


def test_ns_paths_through_the_team_root_and_batches(server: LocalServer, space: Team) -> None:
    dbt = _team_client(server, space.token)
    # An ns:<team root> path goes through the mounts too, whatever the path root.
    bob = dbt.as_user(space.member_id)
    bob.files_upload(b"via ns", f"ns:{space.root_ns}/Projects/ns/one.txt")
    assert bob.files_get_metadata(f"ns:{space.folder_ns}/ns/one.txt").size == 6
    at_root = _at_root(dbt, space, space.member_id)
    res = at_root.files_create_folder_batch(["/Projects/batch/x", "/Bob Member/batch/y"], force_async=False)
    assert [e.get_success().metadata.path_display for e in res.get_complete().entries] == [
        "/Projects/batch/x", "/Bob Member/batch/y"]
    job = at_root.files_delete_batch([files.DeleteArg("/Projects/batch/x")]).get_async_job_id()
    for _ in range(200):
        status = at_root.files_delete_batch_check(job)
        if status.is_complete():
            break
        time.sleep(0.05)
    assert status.get_complete().entries[0].get_success().metadata.path_display == "/Projects/batch/x"
    # Another member's home is not a mount for Bob: the name is just a missing folder of the team root.
    with pytest.raises(ApiError):
        bob.files_get_metadata(f"ns:{space.root_ns}/Ann Admin")


# -- recursive listings of the team root ----------------------------------------------------------------
def _all_pages(client: Any, first: Any) -> tuple[list[Any], str, list[int]]:
    """Every entry of a listing and its continues until has_more is false, the last cursor, page sizes."""
    entries, sizes, page = list(first.entries), [len(first.entries)], first
    while page.has_more:
        page = client.files_list_folder_continue(page.cursor)
        entries += page.entries
        sizes.append(len(page.entries))
    return entries, page.cursor, sizes


def _parents_first(shown: list[str], *, all_there: bool = True) -> None:
    """Each folder comes before what is in it (and, in a full listing, is there at all)."""
    for i, p in enumerate(shown):
        parent = p.rsplit("/", 1)[0]
        if parent and (all_there or parent in shown):
            assert parent in shown[:i], f"{p} listed before its folder"


@pytest.fixture(scope="module")
def deep(server: LocalServer) -> Team:
    """A team whose homes and team folder hold files, for the recursive listings."""
    t = _make_team(server)
    dbt = _team_client(server, t.token)
    bob = _at_root(dbt, t, t.member_id)
    bob.files_upload(b"a", "/Bob Member/docs/a.txt")
    bob.files_upload(b"b", "/Projects/p/b.txt")
    bob.files_upload(b"c", "/Projects/p/q/c.txt")
    _at_root(dbt, t, t.admin_id).files_upload(b"s", "/Ann Admin/secret.txt")
    return t


def test_recursive_listing_at_the_team_root_descends_into_mounts(server: LocalServer, deep: Team) -> None:
    dbt = _team_client(server, deep.token)
    bob_home, ann_home = _homes(dbt, deep)
    bob = _at_root(dbt, deep, deep.member_id)
    entries, _, _ = _all_pages(bob, bob.files_list_folder("", recursive=True))
    by_path = {e.path_lower: e for e in entries}
    shown = [e.path_display for e in entries]
    assert len(shown) == len(set(shown))
    assert set(by_path) == {"/bob member", "/bob member/docs", "/bob member/docs/a.txt",
                            "/projects", "/projects/p", "/projects/p/b.txt", "/projects/p/q", "/projects/p/q/c.txt"}
    _parents_first(shown)
    assert "/Bob Member/docs/a.txt" in shown and "/Projects/p/q/c.txt" in shown
    # Mount points carry the mounted namespace; what is inside them carries it as parent.
    for point, ns in (("/bob member", bob_home), ("/projects", deep.folder_ns)):
        e = by_path[point]
        assert isinstance(e, files.FolderMetadata) and e.sharing_info.shared_folder_id == ns
        assert e.parent_shared_folder_id == deep.root_ns
        assert e.id == bob.files_get_metadata(e.path_display).id
    a = by_path["/bob member/docs/a.txt"]
    assert isinstance(a, files.FileMetadata) and a.size == 1
    assert a.parent_shared_folder_id == bob_home and a.sharing_info.parent_shared_folder_id == bob_home
    c = by_path["/projects/p/q/c.txt"]
    assert c.parent_shared_folder_id == deep.folder_ns and c.sharing_info.parent_shared_folder_id == deep.folder_ns
    assert by_path["/projects/p"].sharing_info.parent_shared_folder_id == deep.folder_ns
    assert c.id == bob.files_get_metadata("/Projects/p/q/c.txt").id

    # An admin on the whole team descends into every home; as a member, into their own only.
    admin = dbt.as_admin(deep.admin_id).with_path_root(common.PathRoot.root(deep.root_ns))
    seen = {e.path_display: e for e in _all_pages(admin, admin.files_list_folder("", recursive=True))[0]}
    assert {"/Ann Admin/secret.txt", "/Bob Member/docs/a.txt", "/Projects/p/b.txt"} <= set(seen)
    assert seen["/Ann Admin/secret.txt"].parent_shared_folder_id == ann_home
    ann = _at_root(dbt, deep, deep.admin_id)
    seen = {e.path_display for e in _all_pages(ann, ann.files_list_folder("", recursive=True))[0]}
    assert "/Ann Admin/secret.txt" in seen and "/Projects/p/b.txt" in seen and not any("Bob" in p for p in seen)

    # Unchanged: the non-recursive listing shows the mounts only; without the path root, the home.
    assert {e.path_display for e in bob.files_list_folder("").entries} == {"/Bob Member", "/Projects"}
    home = dbt.as_user(deep.member_id).files_list_folder("", recursive=True)
    assert {e.path_display for e in home.entries} == {"/docs", "/docs/a.txt"}
    assert home.cursor.startswith("AAH")


def test_recursive_team_root_listing_pages_across_namespaces(server: LocalServer, deep: Team) -> None:
    dbt = _team_client(server, deep.token)
    bob = _at_root(dbt, deep, deep.member_id)
    whole = [e.path_display for e in bob.files_list_folder("", recursive=True).entries]
    for limit in (1, 2, 3):
        first = bob.files_list_folder("", recursive=True, limit=limit)
        assert first.has_more
        paged, _, sizes = _all_pages(bob, first)
        assert [e.path_display for e in paged] == whole
        assert max(sizes) <= limit and len(sizes) >= len(whole) // limit


def test_team_root_cursor_follows_changes_in_every_mount(server: LocalServer) -> None:
    t = _make_team(server)
    dbt = _team_client(server, t.token)
    bob_home, _ = _homes(dbt, t)
    bob = _at_root(dbt, t, t.member_id)
    bob.files_upload(b"1", "/Projects/keep/one.txt")
    bob.files_upload(b"2", "/Projects/keep/two.txt")
    _, listed, _ = _all_pages(bob, bob.files_list_folder("", recursive=True))
    latest = bob.files_list_folder_get_latest_cursor("", recursive=True).cursor
    paged = bob.files_list_folder_get_latest_cursor("", recursive=True, limit=2).cursor
    assert bob.files_list_folder_continue(latest).entries == []

    bob.files_upload(b"h", "/Bob Member/notes/new.txt")
    bob.files_upload(b"t", "/Projects/keep/three.txt")
    bob.files_upload(b"1+", "/Projects/keep/one.txt", mode=files.WriteMode.overwrite)
    bob.files_delete_v2("/Projects/keep/two.txt")
    # Ann's home is not Bob's to see: nothing of it reaches his cursors.
    _at_root(dbt, t, t.admin_id).files_upload(b"x", "/Ann Admin/private.txt")
    expected = {"/Bob Member/notes", "/Bob Member/notes/new.txt", "/Projects/keep/three.txt",
                "/Projects/keep/one.txt", "/Projects/keep/two.txt"}
    for cursor in (listed, latest, paged):
        got, after, sizes = _all_pages(bob, bob.files_list_folder_continue(cursor))
        by_path = {e.path_display: e for e in got}
        assert set(by_path) == expected, cursor
        assert isinstance(by_path["/Projects/keep/two.txt"], files.DeletedMetadata)
        new = by_path["/Bob Member/notes/new.txt"]
        assert isinstance(new, files.FileMetadata) and new.parent_shared_folder_id == bob_home
        assert by_path["/Projects/keep/one.txt"].size == 2
        assert by_path["/Projects/keep/three.txt"].parent_shared_folder_id == t.folder_ns
        _parents_first([e.path_display for e in got], all_there=False)
        if cursor is paged:
            assert max(sizes) <= 2 and len(sizes) >= 3
        assert bob.files_list_folder_continue(after).entries == []

    # A team folder created later is a new mount: continue lists it, point folder first.
    later_ns = server.cli("team", "folder", "create", t.name, "Later").strip().splitlines()[-1]
    bob.files_upload(b"l", "/Later/l.txt")
    got = bob.files_list_folder_continue(latest)
    assert [e.path_display for e in got.entries][-2:] == ["/Later", "/Later/l.txt"]
    assert got.entries[-2].sharing_info.shared_folder_id == later_ns
    assert got.entries[-1].parent_shared_folder_id == later_ns
    # A mount the caller no longer sees is reported deleted: an admin's whole-team cursor continued
    # as a plain member loses the other members' homes.
    admin = dbt.as_admin(t.admin_id).with_path_root(common.PathRoot.root(t.root_ns))
    cursor = admin.files_list_folder_get_latest_cursor("", recursive=True).cursor
    as_member = _at_root(dbt, t, t.admin_id).files_list_folder_continue(cursor).entries
    assert [(type(e), e.path_display) for e in as_member] == [(files.DeletedMetadata, "/Bob Member")]
    # A team root cursor is only good with the team root as path root (its paths are relative to it).
    with pytest.raises(BadInputError) as bad:
        dbt.as_user(t.member_id).files_list_folder_continue(latest)
    assert 'Invalid "cursor" parameter' in bad.value.message


def test_longpoll_on_the_team_root_wakes_for_a_team_folder_change(server: LocalServer) -> None:
    t = _make_team(server)
    dbt = _team_client(server, t.token)
    bob = _at_root(dbt, t, t.member_id)
    bob.files_upload(b"s", "/Projects/seed.txt")
    cursor = bob.files_list_folder_get_latest_cursor("", recursive=True).cursor
    anonymous = dropbox.Dropbox("not-a-valid-token", session=local_session(server.url), max_retries_on_error=0)
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: (anonymous.files_list_folder_longpoll(cursor, 30), time.monotonic()))
        time.sleep(1.0)
        assert not fut.done()
        # Ann writes into the team folder (as herself): Bob's cursor covers that namespace.
        _at_root(dbt, t, t.admin_id).files_upload(b"n", "/Projects/deep/new.txt")
        uploaded = time.monotonic()
        res, answered = fut.result(timeout=10)
    assert res.changes is True and answered - uploaded < 1.5
    got = bob.files_list_folder_continue(cursor).entries
    assert [e.path_display for e in got] == ["/Projects/deep", "/Projects/deep/new.txt"]
    # A cursor still paging has changes at once; one of a listing with nothing new waits.
    first = bob.files_list_folder("", recursive=True, limit=1)
    assert first.has_more and anonymous.files_list_folder_longpoll(first.cursor).changes is True


# -- suspended members ----------------------------------------------------------------------------------
def test_suspended_member_is_locked_out_until_unsuspended(server: LocalServer) -> None:
    t = _make_team(server)
    dbt = _team_client(server, t.token)
    own = dropbox.Dropbox(t.member.token, session=local_session(server.url), max_retries_on_error=0)
    own.files_upload(b"before", "/before.txt")
    out = server.cli("team", "suspend-member", t.name, t.member.email)
    assert "suspended" in out

    with pytest.raises(AuthError) as e:
        own.users_get_current_account()
    assert e.value.error.is_user_suspended()
    with pytest.raises(AuthError) as e:
        dbt.as_user(t.member_id).files_list_folder("")
    assert e.value.error.is_user_suspended()
    raw = local_session(server.url).post("https://api.dropboxapi.com/2/users/get_current_account",
                                         headers={"Authorization": f"Bearer {t.member.token}"})
    assert raw.status_code == 401
    assert raw.json() == {"error_summary": "user_suspended/...", "error": {".tag": "user_suspended"}}

    # Still on the team, reported as suspended.
    listed = {m.profile.team_member_id: m.profile for m in dbt.team_members_list_v2().members}
    assert listed[t.member_id].status.is_suspended() and listed[t.admin_id].status.is_active()
    got = dbt.team_members_get_info_v2([team.UserSelectorArg.email(t.member.email)]).members_info[0]
    assert got.get_member_info().profile.status.is_suspended()
    assert dbt.team_get_info().num_provisioned_users == 2

    server.cli("team", "unsuspend-member", t.name, t.member.email)
    assert own.files_get_metadata("/before.txt").size == 6  # the same token works again
    assert dbt.as_user(t.member_id).users_get_current_account().account_id == t.member.account_id
    listed = {m.profile.team_member_id: m.profile for m in dbt.team_members_list_v2().members}
    assert listed[t.member_id].status.is_active()
