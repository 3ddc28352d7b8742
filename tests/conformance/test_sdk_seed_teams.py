"""Conformance: teams from a seed file (`serve --seed`, #6 "State for tests").  A real server seeded
with a YAML file; the official SDK's DropboxTeam client with the seeded fixed team token reads the
team, its members and namespaces, uploads as a member through an upload session and finish_batch,
and lists a team folder through Dropbox-API-Path-Root.  The seed comes back after a reset and is left
alone at a restart; a bad teams entry stops `serve` with a message naming it."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import dropbox
import pytest
from dropbox import common, files, team
from harness import LOCALBOX, LocalServer, free_port, local_session, running_server

pytestmark = pytest.mark.conformance

ADMIN = "adm-" + secrets.token_hex(8)
TEAM_TOKEN = "sl.lbteam.ci-fixed-team-token_0123456789"
SEED = f"""
accounts:
  - email: ann@example.com
    name: Ann Admin
    tokens: [sl.ann-fixed]
  - email: bob@example.com
    name: Bob Member
    tokens: [sl.bob-fixed]
  - email: solo@example.com
teams:
  - name: Acme
    members:
      - bob@example.com
      - {{email: ann@example.com, admin: true}}
    folders: [Engineering, Sales]
    data_transport_limit: 1000
    tokens:
      - {TEAM_TOKEN}
      - {{scopes: [team_info.read]}}
"""


def _team_client(url: str, token: str) -> Any:
    return dropbox.DropboxTeam(token, session=local_session(url), max_retries_on_error=0,
                               max_retries_on_rate_limit=0)


def _check_seeded_team(url: str) -> None:
    dbt = _team_client(url, TEAM_TOKEN)
    info = dbt.team_get_info()
    assert info.name == "Acme" and info.num_provisioned_users == 2
    members = {m.profile.email: m for m in dbt.team_members_list_v2().members}
    assert set(members) == {"ann@example.com", "bob@example.com"}
    assert [bool(m.roles) for m in (members["ann@example.com"], members["bob@example.com"])] == [True, False]
    bob_id = members["bob@example.com"].profile.team_member_id
    assert dbt.team_token_get_authenticated_admin().admin_profile.email == "ann@example.com"
    limit = dbt.team_features_get_values([team.Feature.upload_api_rate_limit]).values[0]
    assert limit.get_upload_api_rate_limit().get_limit() == 1000

    folders = {n.name: n.namespace_id for n in dbt.team_namespaces_list().namespaces
               if n.namespace_type.is_team_folder()}
    assert set(folders) == {"Engineering", "Sales"}

    # Bob, selected by the team token: start + append + finish_batch into his home namespace.
    bob = dbt.as_user(bob_id)
    session = bob.files_upload_session_start(b"hello ").session_id
    bob.files_upload_session_append_v2(b"world", files.UploadSessionCursor(session, 6), close=True)
    done = bob.files_upload_session_finish_batch_v2([files.UploadSessionFinishArg(
        files.UploadSessionCursor(session, 11), files.CommitInfo("/inbox/hello.txt"))]).entries
    assert done[0].get_success().size == 11
    own = dropbox.Dropbox("sl.bob-fixed", session=local_session(url), max_retries_on_error=0)
    assert own.files_download("/inbox/hello.txt")[1].content == b"hello world"

    # A team folder, listed through Dropbox-API-Path-Root; Bob writes into it, Ann sees it.
    eng = bob.with_path_root(common.PathRoot.namespace_id(folders["Engineering"]))
    assert eng.files_list_folder("").entries == []
    eng.files_upload(b"plan", "/plan.txt")
    ann = dbt.as_user(members["ann@example.com"].profile.team_member_id)
    listed = ann.with_path_root(common.PathRoot.namespace_id(folders["Engineering"])).files_list_folder("")
    assert [e.name for e in listed.entries] == ["plan.txt"]


@pytest.fixture()
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED)
    return path


def test_seeded_team_through_the_sdk_then_reset_and_restart(tmp_path: Path, seed_file: Path) -> None:
    with running_server(tmp_path / "data", ["--seed", str(seed_file), "--admin-token", ADMIN]) as srv:
        generated = re.findall(r"seed: generated team token for Acme: (\S+)", srv.log())
        assert len(generated) == 1 and generated[0].startswith("sl.lbteam.")
        reader = _team_client(srv.url, generated[0])
        assert reader.team_get_info().name == "Acme"  # team_info.read only
        with pytest.raises(dropbox.exceptions.AuthError):
            reader.team_members_list_v2()

        _check_seeded_team(srv.url)

        # A full reset: everything goes, then the seed comes back (the fixed team token included).
        r = subprocess.run([*LOCALBOX, "reset", "--url", srv.url, "--admin-token", ADMIN],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        own = dropbox.Dropbox("sl.bob-fixed", session=local_session(srv.url), max_retries_on_error=0)
        with pytest.raises(dropbox.exceptions.ApiError):
            own.files_get_metadata("/inbox/hello.txt")
        _check_seeded_team(srv.url)  # the same again on the fresh state

        # A restart on the same data: the team exists, so the seed leaves it (and its files) alone.
        srv.restart()
        assert own.files_download("/inbox/hello.txt")[1].content == b"hello world"
        dbt = _team_client(srv.url, TEAM_TOKEN)
        assert dbt.team_get_info().num_provisioned_users == 2
        assert len(dbt.team_namespaces_list().namespaces) == 5  # root, two homes, two team folders


BAD_TEAMS = [
    ('{"name": "A", "members": ["nobody@example.com"]}',
     "teams[0].members[0]: nobody@example.com is not one of the seed's accounts"),
    ('{"name": "A", "tokens": ["sl.not-a-team-token"]}',
     "teams[0].tokens[0]: a team token looks like sl.lbteam."),
    ('{"name": "A", "tokens": [{"token": "sl.lbteam.has space"}]}', "teams[0].tokens[0].token: a team token"),
    ('{"name": "A", "members": [{"email": "ann@example.com", "admin": "yes"}]}',
     "teams[0].members[0].admin: true or false"),
    ('{"name": "A", "data_transport_limit": -1}', "teams[0].data_transport_limit:"),
    ('{"name": "A", "folders": ["X", "x"]}', "teams[0].folders[1]: the team has a folder named 'x' already"),
    ('{"name": "A", "colour": "red"}', "teams[0]: unknown key(s) colour"),
]


@pytest.mark.parametrize(("team_json", "message"), BAD_TEAMS[:3])
def test_a_bad_teams_entry_stops_serve_with_a_message(tmp_path: Path, team_json: str, message: str) -> None:
    seed = tmp_path / "bad.json"
    seed.write_text('{"accounts": [{"email": "ann@example.com"}], "teams": [' + team_json + "]}")
    r = subprocess.run([*LOCALBOX, "serve", "--memory", "--port", str(free_port()), "--seed", str(seed)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    assert f"localbox: --seed: {message}" in r.stderr, r.stderr


@pytest.mark.parametrize(("team_json", "message"), BAD_TEAMS)
def test_bad_teams_entries_are_named(tmp_path: Path, team_json: str, message: str) -> None:
    import json

    from localbox.services.seed import SeedError, parse_seed

    with pytest.raises(SeedError) as e:
        parse_seed({"accounts": [{"email": "ann@example.com"}], "teams": [json.loads(team_json)]}, tmp_path)
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize(("seed", "message"), [
    ({"accounts": [{"email": "ann@example.com"}, {"email": "bob@example.com"}],
      "teams": [{"name": "A", "members": ["ann@example.com"]}, {"name": "B", "members": ["bob@example.com",
                                                                                         "Ann@example.com"]}]},
     "teams[1].members[1]: Ann@example.com is already a member of team 'A'"),
    ({"accounts": [{"email": "ann@example.com"}], "teams": [{"name": "A"}, {"name": "A"}]},
     "teams[1].name: a team named 'A' is given twice"),
    ({"accounts": [{"email": "ann@example.com", "tokens": ["sl.lbteam.abc"]}]},
     "accounts[0].tokens[0]: sl.lbteam.... is the form of a team token"),
    ({"accounts": [{"email": "ann@example.com", "tokens": ["sl.same"]}, {"email": "bob@example.com",
                                                                           "tokens": [{"token": "sl.same"}]}]},
     "accounts[1].tokens[0]: the token 'sl.same' is given twice"),
    ({"accounts": [{"email": "ann@example.com"}], "teams": [{"name": "A", "tokens": ["sl.lbteam.x"]},
                                                            {"name": "B", "tokens": ["sl.lbteam.x"]}]},
     "teams[1].tokens[0]: the token 'sl.lbteam.x' is given twice"),
    ({"accounts": [{"email": "ann@example.com"}], "teams": {"name": "A"}}, "teams: expected a list"),
    ({"accounts": [{"email": "ann@example.com"}], "teams": [{"members": []}]}, "teams[0].name: expected a string"),
])
def test_bad_seeds_with_teams_are_named(tmp_path: Path, seed: dict[str, Any], message: str) -> None:
    from localbox.services.seed import SeedError, parse_seed

    with pytest.raises(SeedError) as e:
        parse_seed(seed, tmp_path)
    assert str(e.value).startswith(message), str(e.value)


def test_the_readme_seed_example_serves_its_team(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"\*\*Seed data\*\*.*?```json\n(.*?)```", readme, re.S)
    assert example is not None
    (tmp_path / "fixtures" / "tree").mkdir(parents=True)
    (tmp_path / "fixtures" / "tree" / "f.txt").write_text("f")
    seed = tmp_path / "seed.json"
    seed.write_text(example.group(1))
    with running_server(tmp_path / "data", ["--memory", "--seed", str(seed)]) as srv:
        dbt = _team_client(srv.url, "sl.lbteam.ci-fixed-team-token")
        assert dbt.team_get_info().name == "Acme"
        members = dbt.team_members_list_v2().members
        assert sorted((m.profile.email, bool(m.roles)) for m in members) == [
            ("ann@example.com", True), ("ci@example.com", False)]
        names = {n.name for n in dbt.team_namespaces_list().namespaces if n.namespace_type.is_team_folder()}
        assert names == {"Engineering", "Sales"}
        limit = dbt.team_features_get_values([team.Feature.upload_api_rate_limit]).values[0]
        assert limit.get_upload_api_rate_limit().get_limit() == 100000
        ci = dropbox.Dropbox("sl.ci-fixed-token", session=local_session(srv.url), max_retries_on_error=0)
        assert ci.files_download("/Fixtures/f.txt")[1].content == b"f"
        assert re.search(r"seed: generated team token for Acme: sl\.lbteam\.\S+", srv.log())


def test_a_member_already_on_another_team_is_left_out_with_a_warning(tmp_path: Path) -> None:
    """On an on-disk database changed with `localbox team ...` since the last start, the seed cannot make
    every team as written: the server still starts, says what it left out, and seeds the rest."""
    seed = tmp_path / "seed.json"
    seed.write_text('{"accounts": [{"email": "ann@example.com"}, {"email": "bob@example.com"}], "teams": '
                    '[{"name": "Acme", "members": [{"email": "ann@example.com", "admin": true}, "bob@example.com"], '
                    f'"tokens": ["{TEAM_TOKEN}"]}}]}}')
    srv = LocalServer(tmp_path / "data", ["--seed", str(seed)])
    srv.cli("account", "create", "bob@example.com")
    srv.cli("team", "create", "Other")
    srv.cli("team", "add-member", "Other", "bob@example.com")
    srv.start()
    try:
        assert "seed: team Acme: member bob@example.com left out: bob@example.com is already on a team" in srv.log()
        assert "Traceback" not in srv.log()
        emails = {m.profile.email for m in _team_client(srv.url, TEAM_TOKEN).team_members_list_v2().members}
        assert emails == {"ann@example.com"}
    finally:
        srv.stop()
