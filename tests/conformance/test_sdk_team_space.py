"""Conformance: the team space as Dropbox mounts it.  With the team root as path root, "" lists the
member homes the caller may see and the team folders, and "/<Home>/..." / "/<Team folder>/..." paths
work in every route inside the mounted namespace, shown under the mount path with sharing_info.
Also suspended members (`localbox team suspend-member`)."""

from __future__ import annotations

import time
from typing import Any

import dropbox
import pytest
from dropbox import common, files, team
from dropbox.exceptions import ApiError, AuthError
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
