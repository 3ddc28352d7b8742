"""Accounts, tokens and scopes (used by the admin CLI and by request authentication)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from localbox.domain.errors import AuthFailure, PathRootFailure
from localbox.domain.models import Account, Token
from localbox.services.access import can_access, root_info_tx
from localbox.stores.base import MetadataStore, MetadataTx

# Every scope that the implemented routes check; a token made without --scope carries them all.
ALL_SCOPES: frozenset[str] = frozenset({
    "account_info.read",
    "files.content.read",
    "files.content.write",
    "files.metadata.read",
    "files.metadata.write",
    "sharing.read",
})

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def new_account_id() -> str:
    # The SDK requires exactly 40 characters: "dbid:" + 35.
    return "dbid:" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(35))


def new_namespace_id() -> str:
    return str(1_000_000_000 + secrets.randbelow(9_000_000_000))


def new_token() -> str:
    return "sl.lb" + secrets.token_urlsafe(48)  # 384 random bits


def hash_token(secret: str) -> str:
    """What the store keeps of a token: a leaked database (or backup) yields no usable secret.
    A plain SHA-256 suffices because the secret is random, not a password."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class UnknownToken(Exception):
    pass


class AccountExists(Exception):
    pass


class UnknownAccount(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, and in which namespace relative paths resolve (Dropbox-API-Path-Root)."""

    account: Account
    scopes: frozenset[str]
    namespace_id: str
    quota: int | None = None  # bytes the account may use in all; None: unlimited
    select_admin: str | None = None  # the Select-Admin mode a team token acts in (domain.teams.AdminMode)


class AccountService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    # -- admin (synchronous: used by the CLI whether or not a server runs)
    def create_account(self, email: str, name: str | None = None, quota: int | None = None) -> Account:
        given, _, surname = (name or email.split("@")[0]).partition(" ")

        def _create(tx: MetadataTx) -> Account:
            if tx.get_account_by_email(email) is not None:
                raise AccountExists(email)
            account = Account(
                account_id=new_account_id(), email=email, given_name=given, surname=surname,
                root_namespace_id=new_namespace_id(), created=time.time(), quota=quota,
            )
            tx.insert_account(account)
            tx.insert_namespace(account.root_namespace_id, account.account_id)
            return account

        return self.store.run_sync(_create)

    def create_token(self, email: str, scopes: Iterable[str] | None = None) -> tuple[str, Token]:
        """A new token: its secret (shown once, never stored) and what is stored of it."""
        wanted = frozenset(scopes) if scopes else ALL_SCOPES
        secret = new_token()

        def _create(tx: MetadataTx) -> Token:
            account = tx.get_account_by_email(email)
            if account is None:
                raise UnknownAccount(email)
            token = Token(token_hash=hash_token(secret), account_id=account.account_id, scopes=wanted,
                          created=time.time(), prefix=secret[:9])
            tx.insert_token(token)
            return token

        return secret, self.store.run_sync(_create)

    def list_tokens(self, email: str) -> list[Token]:
        def _list(tx: MetadataTx) -> list[Token]:
            account = tx.get_account_by_email(email)
            if account is None:
                raise UnknownAccount(email)
            return tx.list_tokens(account.account_id)

        return self.store.run_sync(_list)

    def revoke_tokens(self, email: str, which: str | None) -> list[Token]:
        """Revoke the account's token whose id (from list_tokens) or secret is `which`, or all of
        them when `which` is None; returns what was revoked.  Takes effect at the next request."""

        def _revoke(tx: MetadataTx) -> list[Token]:
            account = tx.get_account_by_email(email)
            if account is None:
                raise UnknownAccount(email)
            tokens = tx.list_tokens(account.account_id)
            if which is not None:
                secret_hash = hash_token(which)
                tokens = [t for t in tokens if which == t.token_id or secret_hash == t.token_hash]
                if not tokens:
                    raise UnknownToken(which)
            for t in tokens:
                tx.delete_token(t.token_hash)
            return tokens

        return self.store.run_sync(_revoke)

    # -- per request
    async def authenticate(self, bearer: str) -> tuple[Account, frozenset[str]]:
        def _lookup(tx: MetadataTx) -> tuple[Account, frozenset[str]] | str:
            token = tx.get_token(hash_token(bearer))
            account = tx.get_account(token.account_id) if token is not None else None
            if token is None or account is None:
                return "invalid_access_token"
            member = tx.team_member_of_account(account.account_id)
            if member is not None and member.suspended is not None:
                return "user_suspended"  # the token stays valid, for when the suspension is lifted
            return account, token.scopes

        found = await self.store.read(_lookup)
        if isinstance(found, str):
            raise AuthFailure(found)
        return found

    async def bytes_used(self, account_id: str) -> int:
        return await self.store.read(lambda tx: tx.bytes_used(account_id))

    async def resolve_path_root(self, caller: Caller, tag: str, namespace_id: str | None) -> str:
        """The namespace that relative paths address, per Dropbox-API-Path-Root.  `root` must name the
        caller's root (the team root for a team member); `namespace_id` any namespace it may access."""
        account = caller.account
        if tag == "home":
            return account.root_namespace_id

        def _resolve(tx: MetadataTx) -> str:
            if tag == "root":
                info = root_info_tx(tx, account)
                if namespace_id != info.root_namespace_id:
                    raise PathRootFailure("invalid_root", info.root_namespace_id, info.home_namespace_id,
                                          info.home_path)
                return info.root_namespace_id
            if namespace_id is None or not can_access(tx, caller, namespace_id):
                raise PathRootFailure("no_permission")
            return namespace_id

        return await self.store.read(_resolve)

    async def get_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        """The accounts among `account_ids` that exist, by id (one read for the lot)."""
        wanted = list(dict.fromkeys(account_ids))

        def _lookup(tx: MetadataTx) -> dict[str, Account]:
            found = {i: tx.get_account(i) for i in wanted}
            return {i: a for i, a in found.items() if a is not None}

        return await self.store.read(_lookup)
