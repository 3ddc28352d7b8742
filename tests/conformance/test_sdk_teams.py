"""Conformance: the official SDK's DropboxTeam client (team routes, as_user, as_admin, with_path_root)
against teams made with `localbox team ...`: members' uploads through finish_batch land in their home
namespaces and in a team folder; select and path-root errors; the data transport limit; rate limits."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import dropbox
import pytest
from dropbox import common, files, team, users
from dropbox.exceptions import ApiError, AuthError, BadInputError, PathRootError, RateLimitError
from harness import LocalServer, local_session

pytestmark = pytest.mark.conformance


@dataclass
class Team:
    name: str
    token: str
    admin: Any  # harness.Account
    member: Any
    admin_id: str
    member_id: str
    folder_ns: str
    root_ns: str


def _team_client(server: LocalServer, token: str, **kwargs: Any) -> Any:
    kwargs.setdefault("max_retries_on_error", 0)
    kwargs.setdefault("max_retries_on_rate_limit", 0)
    return dropbox.DropboxTeam(token, session=local_session(server.url), **kwargs)


def _make_team(server: LocalServer, *, limit: int | None = None) -> Team:
    name = f"Team {secrets.token_hex(3)}"
    server.cli("team", "create", name)
    admin = server.new_account(name="Ann Admin")
    member = server.new_account(name="Bob Member")
    admin_id = server.cli("team", "add-member", name, admin.email, "--admin").strip().splitlines()[-1]
    member_id = server.cli("team", "add-member", name, member.email).strip().splitlines()[-1]
    folder_ns = server.cli("team", "folder", "create", name, "Projects").strip().splitlines()[-1]
    if limit is not None:
        server.cli("team", "set-limit", name, "--data-transport-calls", str(limit))
    token = server.cli("token", "create", "--team", name).strip().splitlines()[-1]
    dbt = _team_client(server, token)
    root_ns = dbt.team_get_info() and dbt.as_user(member_id).users_get_current_account().root_info.root_namespace_id
    return Team(name, token, admin, member, admin_id, member_id, folder_ns, root_ns)


@pytest.fixture(scope="module")
def acme(server: LocalServer) -> Team:
    return _make_team(server)


@pytest.fixture()
def dbt(server: LocalServer, acme: Team) -> Any:
    return _team_client(server, acme.token)


def _finish_batch(dbx: Any, uploads: dict[str, bytes]) -> list[Any]:
    """upload_session/start + finish_batch (async) + check, as a Business uploader does."""
    entries = []
    for path, data in uploads.items():
        sid = dbx.files_upload_session_start(data, close=True).session_id
        entries.append(files.UploadSessionFinishArg(files.UploadSessionCursor(sid, len(data)), files.CommitInfo(path)))
    job = dbx.files_upload_session_finish_batch(entries).get_async_job_id()
    for _ in range(200):
        status = dbx.files_upload_session_finish_batch_check(job)
        if status.is_complete():
            return [e.get_success() for e in status.get_complete().entries]
        time.sleep(0.05)
    raise AssertionError("finish_batch did not complete")


# -- team routes ------------------------------------------------------------------------------------
def test_team_routes(dbt: Any, acme: Team) -> None:
    info = dbt.team_get_info()
    assert info.name == acme.name and info.team_id.startswith("dbtid:") and info.num_provisioned_users == 2

    first = dbt.team_members_list_v2(limit=1)
    assert first.has_more and len(first.members) == 1
    rest = dbt.team_members_list_continue_v2(first.cursor)
    assert not rest.has_more
    profiles = {m.profile.team_member_id: m.profile for m in first.members + rest.members}
    assert set(profiles) == {acme.admin_id, acme.member_id}
    bob = profiles[acme.member_id]
    assert bob.email == acme.member.email and bob.account_id == acme.member.account_id
    assert bob.status.is_active() and bob.root_folder_id == acme.root_ns

    got = dbt.team_members_get_info_v2([team.UserSelectorArg.email(acme.admin.email),
                                        team.UserSelectorArg.team_member_id("dbmid:nobody")])
    assert got.members_info[0].get_member_info().profile.team_member_id == acme.admin_id
    assert got.members_info[1].is_id_not_found()

    spaces = dbt.team_namespaces_list(limit=2)
    seen = list(spaces.namespaces)
    while spaces.has_more:
        spaces = dbt.team_namespaces_list_continue(spaces.cursor)
        seen += spaces.namespaces
    kinds = {n.namespace_id: n.namespace_type for n in seen}
    assert kinds[acme.folder_ns].is_team_folder() and kinds[acme.root_ns].is_team_member_root()
    assert kinds[bob.member_folder_id].is_team_member_folder()

    admin = dbt.team_token_get_authenticated_admin().admin_profile
    assert admin.team_member_id == acme.admin_id

    values = dbt.team_features_get_values([team.Feature.upload_api_rate_limit]).values
    assert values[0].get_upload_api_rate_limit().is_unlimited()
    with pytest.raises(ApiError) as e:
        dbt.team_features_get_values([])
    assert e.value.error.is_empty_features_list()
    with pytest.raises(ApiError) as e:
        dbt.team_members_list_continue_v2("not-a-cursor")
    assert e.value.error.is_invalid_cursor()


def test_member_root_info_is_team(dbt: Any, acme: Team) -> None:
    acct = dbt.as_user(acme.member_id).users_get_current_account()
    info = acct.root_info
    assert isinstance(info, common.TeamRootInfo)
    assert info.root_namespace_id == acme.root_ns and info.home_path == "/Bob Member"
    assert info.home_namespace_id != acme.root_ns
    assert acct.account_type.is_business() and acct.team_member_id == acme.member_id
    assert acct.account_id == acme.member.account_id
    values = dbt.as_user(acme.member_id).users_features_get_values(
        [users.UserFeature.team_shared_dropbox, users.UserFeature.distinct_member_home, users.UserFeature.file_locking])
    got = values.values
    assert got[0].get_team_shared_dropbox().get_enabled() and got[1].get_distinct_member_home().get_enabled()
    assert not got[2].get_file_locking().get_enabled()


# -- Select-User: uploads land in the member's namespaces ------------------------------------------
def test_as_user_finish_batch_into_home_and_team_folder(server: LocalServer, dbt: Any, acme: Team) -> None:
    bob = dbt.as_user(acme.member_id)
    done = _finish_batch(bob, {"/inbox/a.txt": b"alpha", "/inbox/b.txt": b"beta"})
    assert [m.path_display for m in done] == ["/inbox/a.txt", "/inbox/b.txt"]
    in_folder = bob.with_path_root(common.PathRoot.namespace_id(acme.folder_ns))
    done = _finish_batch(in_folder, {"/shared/plan.txt": b"plan"})
    assert done[0].path_lower == "/shared/plan.txt"

    # Bob's own user token sees the first two in his home and the third through ns:<team folder>.
    own = dropbox.Dropbox(acme.member.token, session=local_session(server.url), max_retries_on_error=0)
    assert {e.name for e in own.files_list_folder("/inbox").entries} == {"a.txt", "b.txt"}
    assert own.files_get_metadata(f"ns:{acme.folder_ns}/shared/plan.txt").size == 4
    # ...and the admin does not see Bob's files in their own home.
    ann = dbt.as_user(acme.admin_id)
    with pytest.raises(ApiError):
        ann.files_get_metadata("/inbox/a.txt")
    assert ann.files_get_metadata(f"ns:{acme.folder_ns}/shared/plan.txt").size == 4


def test_as_admin_modes(dbt: Any, acme: Team) -> None:
    bob = dbt.as_user(acme.member_id)
    bob.files_upload(b"private", "/private.txt")
    home = bob.users_get_current_account().root_info.home_namespace_id
    admin = dbt.as_admin(acme.admin_id)
    # whole_team (a read route): the admin reaches a member's home namespace.
    listing = admin.with_path_root(common.PathRoot.namespace_id(home)).files_list_folder("")
    assert "private.txt" in {e.name for e in listing.entries}
    # team_admin (a write route): team-owned content only, not a member's home.
    with pytest.raises(PathRootError) as e:
        admin.with_path_root(common.PathRoot.namespace_id(home)).files_upload(b"x", "/admin.txt")
    assert e.value.error.is_no_permission()
    admin.with_path_root(common.PathRoot.namespace_id(acme.folder_ns)).files_upload(b"x", "/admin.txt")
    # A route without select_admin_mode refuses Select-Admin.
    with pytest.raises(BadInputError):
        admin.users_get_space_usage()


# -- errors ---------------------------------------------------------------------------------------------
def test_select_errors(server: LocalServer, dbt: Any, acme: Team) -> None:
    with pytest.raises(AuthError) as e:
        dbt.as_user("dbmid:AAAAnotamember").users_get_current_account()
    assert e.value.error.is_invalid_select_user()
    with pytest.raises(AuthError) as e:
        dbt.as_admin(acme.member_id).files_list_folder("")
    assert e.value.error.is_invalid_select_admin()
    # A team token on a user route without Select-User.
    plain = dropbox.Dropbox(acme.token, session=local_session(server.url), max_retries_on_error=0)
    with pytest.raises(BadInputError) as bad:
        plain.users_get_current_account()
    assert "Dropbox-API-Select-User" in bad.value.message
    # A user token on a team route.
    with pytest.raises(BadInputError) as bad:
        _team_client(server, acme.member.token).team_get_info()
    assert "team management function" in bad.value.message
    # A team token without team_data.member cannot select anyone.
    narrow = server.cli("token", "create", "--team", acme.name, "--scope", "account_info.read",
                        "--scope", "team_info.read").strip().splitlines()[-1]
    with pytest.raises(AuthError) as e:
        _team_client(server, narrow).as_user(acme.member_id).users_get_current_account()
    assert e.value.error.is_missing_scope() and e.value.error.get_missing_scope().required_scope == "team_data.member"
    with pytest.raises(AuthError) as e:
        _team_client(server, narrow).team_members_list_v2()
    assert e.value.error.get_missing_scope().required_scope == "members.read"


def test_path_root_errors(dbt: Any, acme: Team) -> None:
    bob = dbt.as_user(acme.member_id)
    bob.with_path_root(common.PathRoot.root(acme.root_ns)).files_list_folder("")
    with pytest.raises(PathRootError) as e:
        bob.with_path_root(common.PathRoot.root("123")).files_list_folder("")
    info = e.value.error.get_invalid_root()
    assert isinstance(info, common.TeamRootInfo) and info.root_namespace_id == acme.root_ns
    ann_home = dbt.as_user(acme.admin_id).users_get_current_account().root_info.home_namespace_id
    with pytest.raises(PathRootError) as e:
        bob.with_path_root(common.PathRoot.namespace_id(ann_home)).files_list_folder("")
    assert e.value.error.is_no_permission()


def test_removed_member_is_no_longer_selectable(server: LocalServer, dbt: Any) -> None:
    t = _make_team(server)
    client = _team_client(server, t.token)
    client.as_user(t.member_id).files_upload(b"mine", "/kept.txt")
    server.cli("team", "remove-member", t.name, t.member.email)
    with pytest.raises(AuthError) as e:
        client.as_user(t.member_id).users_get_current_account()
    assert e.value.error.is_invalid_select_user()
    own = dropbox.Dropbox(t.member.token, session=local_session(server.url), max_retries_on_error=0)
    acct = own.users_get_current_account()
    assert isinstance(acct.root_info, common.UserRootInfo) and acct.account_type.is_basic()
    assert own.files_get_metadata("/kept.txt").size == 4  # the home namespace stays theirs
    with pytest.raises(ApiError):
        own.files_get_metadata(f"ns:{t.folder_ns}/anything")
    members = client.team_members_list_v2(include_removed=True).members
    assert any(m.profile.status.is_removed() for m in members)


# -- data transport limit -----------------------------------------------------------------------------
def test_data_transport_limit_crosses_to_403_at_the_limit(server: LocalServer) -> None:
    t = _make_team(server, limit=3)
    client = _team_client(server, t.token)
    value = client.team_features_get_values([team.Feature.upload_api_rate_limit]).values[0]
    assert value.get_upload_api_rate_limit().get_limit() == 3
    bob = client.as_user(t.member_id)
    sid = bob.files_upload_session_start(b"ab").session_id  # 1
    bob.files_upload_session_append_v2(b"cd", files.UploadSessionCursor(sid, 2), close=True)  # 2
    bob.files_upload(b"three", "/three.txt")  # 3
    with pytest.raises(ApiError) as e:
        bob.files_upload(b"four", "/four.txt")
    assert e.value.user_message_text.startswith("Your team has used all of its data transport API calls")
    with pytest.raises(ApiError):  # the admin's calls count for the same team
        client.as_user(t.admin_id).files_upload_session_start(b"")
    bob.files_get_metadata("/three.txt")  # other routes are not data transport calls
    # The member's own user token is bound by the same team allowance.
    own = dropbox.Dropbox(t.member.token, session=local_session(server.url), max_retries_on_error=0)
    with pytest.raises(ApiError):
        own.files_upload(b"x", "/x.txt")
    usage = server.cli("team", "usage", t.name)
    assert "data transport calls 3, denied 3, limit 3" in usage
    server.cli("team", "set-limit", t.name, "--data-transport-calls", "none")
    bob.files_upload(b"four", "/four.txt")


# -- rate limits ----------------------------------------------------------------------------------------
def test_rate_limit_429_and_sdk_backoff(server: LocalServer) -> None:
    acct = server.new_account()
    token = server.cli("token", "create", acct.email, "--rate-limit", "2/s").strip().splitlines()[-1]
    strict = dropbox.Dropbox(token, session=local_session(server.url), max_retries_on_error=0,
                             max_retries_on_rate_limit=0)
    with pytest.raises(RateLimitError) as e:
        for _ in range(10):
            strict.users_get_current_account()
    assert e.value.error.reason.is_too_many_requests() and e.value.backoff >= 1
    # With its default policy the SDK waits out Retry-After and every call succeeds.
    patient = dropbox.Dropbox(token, session=local_session(server.url), max_retries_on_error=0)
    started = time.monotonic()
    for i in range(5):
        patient.files_upload(b"x" * i, f"/r{i}.txt")
    assert time.monotonic() - started >= 1.0
    assert len(patient.files_list_folder("").entries) == 5
