"""Tokens are stored only as SHA-256 hashes; an older database's plain tokens are hashed in place."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest
from stores.legacy import make_legacy

from localbox.domain.errors import AuthFailure
from localbox.services.accounts import AccountService, UnknownToken, hash_token
from localbox.stores.sqlite import SCHEMA_VERSION, SqliteMetadataStore


def _close(store: SqliteMetadataStore) -> None:
    asyncio.run(store.close())


def test_the_database_holds_no_secret_and_lookups_go_by_hash(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite3"
    store = SqliteMetadataStore(path)
    service = AccountService(store)
    service.create_account("ann@example.com")
    secret, token = service.create_token("ann@example.com")
    try:
        assert len(secret) >= len("sl.lb") + 22  # >= 128 random bits after the prefix
        assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        account, scopes = asyncio.run(service.authenticate(secret))
        assert account.email == "ann@example.com" and scopes == token.scopes
        with pytest.raises(AuthFailure):
            asyncio.run(service.authenticate(token.token_hash))  # the stored hash is no credential
    finally:
        _close(store)
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("metadata.sqlite3-*"))
    assert secret.encode() not in raw
    assert secret[9:].encode() not in raw  # not even the part after the shown prefix


def test_list_and_revoke(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "metadata.sqlite3")
    service = AccountService(store)
    service.create_account("ann@example.com")
    service.create_account("bob@example.com")
    s1, t1 = service.create_token("ann@example.com")
    s2, t2 = service.create_token("ann@example.com", ["files.content.read"])
    s3, _ = service.create_token("bob@example.com")
    try:
        listed = service.list_tokens("ann@example.com")
        assert [t.token_id for t in listed] == [t1.token_id, t2.token_id]
        with pytest.raises(UnknownToken):
            service.revoke_tokens("bob@example.com", t1.token_id)  # not bob's to revoke
        assert [t.token_id for t in service.revoke_tokens("ann@example.com", t1.token_id)] == [t1.token_id]
        with pytest.raises(AuthFailure):
            asyncio.run(service.authenticate(s1))
        asyncio.run(service.authenticate(s2))
        assert [t.token_id for t in service.revoke_tokens("ann@example.com", s2)] == [t2.token_id]  # by secret
        with pytest.raises(AuthFailure):
            asyncio.run(service.authenticate(s2))
        asyncio.run(service.authenticate(s3))
        service.revoke_tokens("bob@example.com", None)
        with pytest.raises(AuthFailure):
            asyncio.run(service.authenticate(s3))
    finally:
        _close(store)


def test_a_version_2_database_has_its_tokens_hashed(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite3"
    store = SqliteMetadataStore(path)
    service = AccountService(store)
    account = service.create_account("ann@example.com")
    _close(store)
    old_secret = "sl.lb" + "A" * 64
    # What a version-2 release left: no Alembic stamp, tokens in clear in a `token` column.
    make_legacy(path, 2)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO tokens (token, account_id, scopes) VALUES (?,?,?)",
               (old_secret, account.account_id, "files.content.read"))
    db.commit()
    db.close()

    again = SqliteMetadataStore(path)
    service = AccountService(again)
    try:
        found, scopes = asyncio.run(service.authenticate(old_secret))
        assert found.account_id == account.account_id and scopes == frozenset({"files.content.read"})
        [listed] = service.list_tokens("ann@example.com")
        assert listed.token_hash == hash_token(old_secret) and listed.prefix == old_secret[:9]
    finally:
        _close(again)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert db.execute("SELECT COUNT(*) FROM tokens WHERE token_hash=?", (old_secret,)).fetchone() == (0,)
    db.close()
