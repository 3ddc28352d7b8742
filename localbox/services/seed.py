"""Seed data (`serve --seed FILE`): accounts with their tokens, folders and files, so that a test
environment comes up ready, and comes back the same after `POST /admin/reset`.

The file is JSON, or YAML when PyYAML is installed (`pip install localbox[yaml]`):

    {"accounts": [{
        "email": "alice@example.com", "name": "Alice Liddell", "quota": "10GiB",
        "tokens": ["sl.fixed-token-for-ci", {"token": "sl.read-only", "scopes": ["files.metadata.read"]}, {}],
        "folders": ["/Photos", "/Docs/2024"],
        "files": [{"path": "/hello.txt", "content": "hi"}, {"path": "/a.bin", "content_base64": "AAEC"}],
        "import": "./fixtures/alice"            # a local folder copied into the account ("/" of it)
    }]}

A token given as a string (or {"token": ...}) is that exact secret, so CI configuration can hard-code
it; {} or {"scopes": [...]} makes a random one, reported by `apply` (and printed by `serve`).
Relative `import` folders are relative to the seed file.

Teams (Dropbox Business) come after the accounts, whose emails their members name:

    "teams": [{
        "name": "Acme", "data_transport_limit": 1000,      # calls a month; omit (or null) for none
        "members": ["bob@example.com", {"email": "alice@example.com", "admin": true}],
        "folders": ["Engineering"],                         # team folders
        "tokens": ["sl.lbteam.fixed-team-token", {"scopes": ["team_info.read"]}, {}]
    }]

A fixed team token must look like the ones localbox makes: "sl.lbteam." then letters, digits, - or _.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from localbox.domain.errors import DomainError
from localbox.domain.models import Account, Token
from localbox.domain.teams import TEAM_TOKEN_PREFIX, is_team_token, is_team_token_secret
from localbox.services.accounts import (
    ALL_SCOPES,
    AccountExists,
    AccountService,
    Caller,
    UnknownAccount,
    hash_token,
    new_token,
)
from localbox.services.files import CommitSpec
from localbox.services.teams import TEAM_SCOPES, TeamError, TeamService
from localbox.services.tree import TreeService
from localbox.services.upload_sessions import Body, UploadSessionService

log = logging.getLogger("localbox.seed")
_SIZE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
               "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


class SeedError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SeedToken:
    secret: str | None  # None: make a random one
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class SeedFile:
    path: str
    content: bytes


@dataclass(frozen=True, slots=True)
class SeedAccount:
    email: str
    name: str | None = None
    quota: int | None = None
    tokens: tuple[SeedToken, ...] = ()
    folders: tuple[str, ...] = ()
    files: tuple[SeedFile, ...] = ()
    imports: tuple[tuple[Path, str], ...] = ()  # (local folder, Dropbox folder it lands in)


@dataclass(frozen=True, slots=True)
class SeedMember:
    email: str
    admin: bool = False


@dataclass(frozen=True, slots=True)
class SeedTeam:
    name: str
    members: tuple[SeedMember, ...] = ()
    folders: tuple[str, ...] = ()
    transport_limit: int | None = None  # data transport calls a month; None: no limit
    tokens: tuple[SeedToken, ...] = ()


@dataclass(frozen=True, slots=True)
class Seed:
    accounts: tuple[SeedAccount, ...] = ()
    teams: tuple[SeedTeam, ...] = ()


@dataclass(slots=True)
class Seeded:
    """What applying a seed made: the secrets of the tokens it generated, by account email."""

    tokens: dict[str, list[str]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # email -> account id, of the accounts made
    team_tokens: dict[str, list[str]] = field(default_factory=dict)  # team name -> generated secrets


def _quota(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        number = text.rstrip("KMGTIB")
        unit = text[len(number):]
        if number.isdigit() and unit in _SIZE_UNITS:
            return int(number) * _SIZE_UNITS[unit]
    raise SeedError(f"quota: not a size: {value!r}")


def _expect(obj: Any, kind: type, where: str) -> Any:
    if not isinstance(obj, kind):
        what = "an object" if kind is dict else "a list" if kind is list else "a string"
        raise SeedError(f"{where}: expected {what}")
    return obj


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise SeedError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")


def _token(obj: Any, where: str, *, team: bool = False) -> SeedToken:
    default = TEAM_SCOPES if team else ALL_SCOPES
    if isinstance(obj, str):
        obj = {"token": obj}
        where_secret = where
    else:
        where_secret = f"{where}.token"
    _only(_expect(obj, dict, where), {"token", "scopes"}, where)
    secret = obj.get("token")
    if secret is not None and (not isinstance(secret, str) or not secret.strip()):
        raise SeedError(f"{where_secret}: a non-empty string")
    if secret is not None and team and not is_team_token_secret(secret):
        raise SeedError(f"{where_secret}: a team token looks like {TEAM_TOKEN_PREFIX}<letters, digits, - and _> "
                        f"(as `localbox token create --team` makes), not {secret!r}")
    if secret is not None and not team and is_team_token(secret):
        # The prefix alone routes a bearer to the team tokens: this one would never authenticate.
        raise SeedError(f"{where_secret}: {TEAM_TOKEN_PREFIX}... is the form of a team token; "
                        "put it under teams[].tokens, or pick another secret")
    scopes = obj.get("scopes")
    if scopes is not None and not (isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)):
        raise SeedError(f"{where}.scopes: a list of strings")
    return SeedToken(secret, frozenset(scopes) if scopes else default)


def _file(obj: Any, where: str) -> SeedFile:
    _only(_expect(obj, dict, where), {"path", "content", "content_base64"}, where)
    path = _expect(obj.get("path"), str, f"{where}.path")
    if ("content" in obj) == ("content_base64" in obj):
        raise SeedError(f"{where}: give one of content (text) or content_base64")
    if "content" in obj:
        return SeedFile(path, _expect(obj["content"], str, f"{where}.content").encode("utf-8"))
    try:
        return SeedFile(path, base64.b64decode(_expect(obj["content_base64"], str, where), validate=True))
    except ValueError as e:
        raise SeedError(f"{where}.content_base64: {e}") from None


def _import(obj: Any, base: Path, where: str) -> tuple[Path, str]:
    if isinstance(obj, str):
        obj = {"from": obj}
    _only(_expect(obj, dict, where), {"from", "to"}, where)
    local = Path(_expect(obj.get("from"), str, f"{where}.from")).expanduser()
    local = local if local.is_absolute() else base / local
    if not local.is_dir():
        raise SeedError(f"{where}: {local} is not a folder")
    return local, _expect(obj.get("to", ""), str, f"{where}.to").rstrip("/")


def _member(obj: Any, where: str) -> SeedMember:
    if isinstance(obj, str):
        return SeedMember(obj)
    _only(_expect(obj, dict, where), {"email", "admin"}, where)
    admin = obj.get("admin", False)
    if not isinstance(admin, bool):
        raise SeedError(f"{where}.admin: true or false")
    return SeedMember(_expect(obj.get("email"), str, f"{where}.email"), admin)


def _transport_limit(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise SeedError(f"{where}: a number of calls a month (0 or more), or null for no limit")


def _team(obj: Any, where: str, emails: dict[str, str], teams_of: dict[str, str]) -> SeedTeam:
    """One teams[] entry; `emails`: the seed's accounts (lower-cased email -> as written), `teams_of`:
    which team each account joined in the entries before (an account is on one team at most)."""
    _only(_expect(obj, dict, where), {"name", "members", "folders", "data_transport_limit", "tokens"}, where)
    name = _expect(obj.get("name"), str, f"{where}.name")
    if not name.strip():
        raise SeedError(f"{where}.name: a non-empty string")
    members = []
    for j, m in enumerate(_expect(obj.get("members", []), list, f"{where}.members")):
        member = _member(m, f"{where}.members[{j}]")
        email = member.email.lower()
        if email not in emails:
            raise SeedError(f"{where}.members[{j}]: {member.email} is not one of the seed's accounts")
        if email in teams_of:
            already = "this team" if teams_of[email] == name else f"team {teams_of[email]!r}"
            raise SeedError(f"{where}.members[{j}]: {member.email} is already a member of {already}")
        teams_of[email] = name
        members.append(member)
    folders: list[str] = []
    for j, f in enumerate(_expect(obj.get("folders", []), list, f"{where}.folders")):
        folder = _expect(f, str, f"{where}.folders[{j}]")
        if not folder.strip() or "/" in folder:
            raise SeedError(f"{where}.folders[{j}]: a team folder's name (not empty, no '/'), not {folder!r}")
        if folder.lower() in (x.lower() for x in folders):
            raise SeedError(f"{where}.folders[{j}]: the team has a folder named {folder!r} already")
        folders.append(folder)
    return SeedTeam(
        name=name, members=tuple(members), folders=tuple(folders),
        transport_limit=_transport_limit(obj.get("data_transport_limit"), f"{where}.data_transport_limit"),
        tokens=tuple(_token(t, f"{where}.tokens[{j}]", team=True)
                     for j, t in enumerate(_expect(obj.get("tokens", []), list, f"{where}.tokens"))),
    )


def _check_unique_secrets(seed: Seed) -> None:
    seen: set[str] = set()
    holders = [(f"accounts[{i}].tokens", a.tokens) for i, a in enumerate(seed.accounts)]
    holders += [(f"teams[{i}].tokens", t.tokens) for i, t in enumerate(seed.teams)]
    for where, tokens in holders:
        for j, t in enumerate(tokens):
            if t.secret is not None:
                if t.secret in seen:
                    raise SeedError(f"{where}[{j}]: the token {t.secret!r} is given twice")
                seen.add(t.secret)


def parse_seed(obj: Any, base: Path) -> Seed:
    """A Seed from the file's decoded content (`base`: the folder relative imports start from)."""
    _only(_expect(obj, dict, "seed"), {"accounts", "teams"}, "seed")
    accounts = []
    for i, a in enumerate(_expect(obj.get("accounts", []), list, "accounts")):
        where = f"accounts[{i}]"
        _only(_expect(a, dict, where), {"email", "name", "quota", "tokens", "folders", "files", "import"}, where)
        imports = a.get("import")
        accounts.append(SeedAccount(
            email=_expect(a.get("email"), str, f"{where}.email"),
            name=_expect(a["name"], str, f"{where}.name") if a.get("name") is not None else None,
            quota=_quota(a.get("quota")),
            tokens=tuple(_token(t, f"{where}.tokens[{j}]")
                         for j, t in enumerate(_expect(a.get("tokens", []), list, f"{where}.tokens"))),
            folders=tuple(_expect(f, str, f"{where}.folders[{j}]")
                          for j, f in enumerate(_expect(a.get("folders", []), list, f"{where}.folders"))),
            files=tuple(_file(f, f"{where}.files[{j}]")
                        for j, f in enumerate(_expect(a.get("files", []), list, f"{where}.files"))),
            imports=tuple(_import(m, base, f"{where}.import")
                          for m in (imports if isinstance(imports, list) else [imports] if imports else [])),
        ))
    emails: dict[str, str] = {}
    for i, a in enumerate(accounts):
        if a.email.lower() in emails:
            raise SeedError(f"accounts[{i}].email: {a.email} is given twice")
        emails[a.email.lower()] = a.email
    teams: list[SeedTeam] = []
    teams_of: dict[str, str] = {}
    for i, t in enumerate(_expect(obj.get("teams", []), list, "teams")):
        team = _team(t, f"teams[{i}]", emails, teams_of)
        if team.name in (x.name for x in teams):
            raise SeedError(f"teams[{i}].name: a team named {team.name!r} is given twice")
        teams.append(team)
    seed = Seed(tuple(accounts), tuple(teams))
    _check_unique_secrets(seed)
    return seed


def load_seed(path: Path) -> Seed:
    """Read a seed file: YAML for .yaml/.yml (needs PyYAML), JSON otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SeedError(f"cannot read {path}: {e}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise SeedError("a YAML seed needs PyYAML: pip install 'localbox[yaml]' (or use JSON)") from None
        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SeedError(f"{path}: {e}") from None
    else:
        try:
            obj = json.loads(text)
        except ValueError as e:
            raise SeedError(f"{path}: {e}") from None
    return parse_seed(obj, path.parent)


async def _chunks_of(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, 1024 * 1024):
            yield chunk


class SeedService:
    def __init__(self, accounts: AccountService, sessions: UploadSessionService, tree: TreeService,
                 default_quota: int | None, teams: TeamService | None = None) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.tree = tree
        self.default_quota = default_quota
        self.teams = teams or TeamService(accounts.store)

    async def apply(self, seed: Seed) -> Seeded:
        seeded = Seeded()
        for a in seed.accounts:
            try:
                account = await asyncio.to_thread(self.accounts.create_account, a.email, a.name, a.quota)
            except AccountExists:
                continue  # seeded by an earlier start of this (on-disk) server: leave it as it is now
            seeded.accounts[a.email] = account.account_id
            generated = [await self._token(account, t) for t in a.tokens]
            seeded.tokens[a.email] = [s for s, t in zip(generated, a.tokens, strict=True) if t.secret is None]
            quota = account.quota if account.quota is not None else self.default_quota
            caller = Caller(account=account, scopes=ALL_SCOPES, namespace_id=account.root_namespace_id, quota=quota)
            for folder in a.folders:
                await self._folder(caller, folder)
            for f in a.files:
                await self._upload(caller, f.path, Body(_chunks_of(f.content), len(f.content)))
            for local, target in a.imports:
                await self._import(caller, local, target)
        for t in seed.teams:
            await self._team(t, seeded)
        return seeded

    async def _team(self, t: SeedTeam, seeded: Seeded) -> None:
        teams = self.teams
        try:
            await asyncio.to_thread(teams.create_team, t.name)
        except TeamError:
            return  # seeded by an earlier start of this (on-disk) server: leave it as it is now

        async def step(what: str, fn: Callable[[], object]) -> None:
            # Only state the seed did not make can refuse a step (an account put on another team with
            # `localbox team add-member`, on a server with an on-disk database): say so and go on, as
            # an existing account is left alone, rather than fail the server's start.
            try:
                await asyncio.to_thread(fn)
            except (TeamError, UnknownAccount) as e:
                log.warning("seed: team %s: %s left out: %s", t.name, what, e)

        # Admins first: team tokens are recorded as made by the team's first admin.
        for m in sorted(t.members, key=lambda m: not m.admin):
            await step(f"member {m.email}", partial(teams.add_member, t.name, m.email, admin=m.admin))
        for folder in t.folders:
            await step(f"team folder {folder}", partial(teams.create_folder, t.name, folder))
        if t.transport_limit is not None:
            await asyncio.to_thread(teams.set_transport_limit, t.name, t.transport_limit)
        generated = seeded.team_tokens.setdefault(t.name, [])

        def make_token(token: SeedToken) -> None:
            secret, _ = teams.create_token(t.name, token.scopes, None, token.secret)
            if token.secret is None:
                generated.append(secret)

        for token in t.tokens:
            await step("a team token", partial(make_token, token))

    async def _token(self, account: Account, t: SeedToken) -> str:
        secret = t.secret if t.secret is not None else new_token()
        token = Token(token_hash=hash_token(secret), account_id=account.account_id, scopes=t.scopes,
                      created=time.time(), prefix=secret[:9])
        await self.accounts.store.run(lambda tx: tx.insert_token(token))
        return secret

    async def _folder(self, caller: Caller, path: str) -> None:
        try:
            await self.tree.create_folder(caller, path, autorename=False)
        except DomainError as e:
            if "conflict" not in e.tags:  # already there (an import's folder, say) is fine
                raise SeedError(f"folder {path}: {'/'.join(e.tags)}") from None

    async def _upload(self, caller: Caller, path: str, body: Body) -> None:
        try:
            await self.sessions.upload(caller, CommitSpec(path=path, mode="overwrite"), content_hash=None, body=body)
        except DomainError as e:
            raise SeedError(f"file {path}: {'/'.join(e.tags)}") from None

    async def _import(self, caller: Caller, local: Path, target: str) -> None:
        for root, dirs, names in os.walk(local):
            dirs.sort()
            rel = Path(root).relative_to(local).as_posix()
            here = target if rel == "." else f"{target}/{rel}"
            if rel != ".":
                await self._folder(caller, here)
            for name in sorted(names):
                file = Path(root) / name
                if file.is_file():
                    await self._upload(caller, f"{here}/{name}", Body(_file_chunks(file), file.stat().st_size))
