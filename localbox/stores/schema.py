"""The metadata schema at the newest migration, as SQLAlchemy Core tables: one definition for SQLite and
PostgreSQL.  Fresh databases are created from it (then stamped with HEAD); existing ones move forward
through the Alembic revisions in localbox/migrations, and tests/stores/test_migrations.py checks that
both roads end at the same schema.

The stores keep their own hand-written SQL (faster than building statements per call); only the DDL
comes from here.  Imported only when a schema is created or checked in depth: SQLAlchemy stays off
the hot path and out of the admin CLI's start-up.

Dialect notes: PostgreSQL text columns use the "C" collation, so that ORDER BY and the range scans of
the stores sort by code point exactly as SQLite does; `REAL` times are double precision; names unique
regardless of case get an index on lower(...) (SQLite also keeps COLLATE NOCASE on the column).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.types import TypeEngine

from localbox.stores.schema_head import HEAD

__all__ = ["HEAD", "metadata"]


def _text(*, nocase: bool = False) -> TypeEngine[str]:
    return Text(collation="NOCASE" if nocase else None).with_variant(Text(collation="C"), "postgresql")


def _col(name: str, kind: Any, *args: Any, null: bool = False, **kw: Any) -> Column[Any]:
    return Column(name, kind, *args, nullable=null, **kw)


T = _text
metadata = MetaData()

Table("meta", metadata, _col("key", T(), primary_key=True), _col("value", T()))

accounts = Table(
    "accounts", metadata,
    _col("account_id", T(), primary_key=True), _col("email", _text(nocase=True), unique=True),
    _col("given_name", T()), _col("surname", T()), _col("root_namespace_id", T()), _col("created", Float),
    _col("quota", BigInteger, null=True),
)
Index("accounts_email_lower", func.lower(accounts.c.email), unique=True)

Table(
    "tokens", metadata,
    _col("token_hash", T(), primary_key=True), _col("account_id", T(), ForeignKey("accounts.account_id")),
    _col("scopes", T()), _col("created", Float, server_default=text("0")),
    _col("prefix", T(), server_default=text("''")),
    Index("tokens_account", "account_id"),
)
Table(
    "namespaces", metadata,
    _col("namespace_id", T(), primary_key=True), _col("owner_account_id", T()),
    _col("seq", BigInteger, server_default=text("0")), _col("bytes_used", BigInteger, server_default=text("0")),
    Index("namespaces_owner", "owner_account_id"),
)
Table(
    "sessions", metadata,
    _col("session_id", T(), primary_key=True), _col("account_id", T()), _col("session_type", T()),
    _col("offset", BigInteger), _col("closed", Integer), _col("created", Float), _col("expires", Float),
    _col("blocks", LargeBinary), _col("state", T()),
    # 0002: a lease on a sequential session's staged bytes while one node appends (any node serves).
    _col("lock_owner", T(), null=True), _col("lock_until", Float, null=True),
    Index("sessions_expires", "expires"),
    Index("sessions_account", "account_id"),  # 0005: the per-account cap on open sessions counts by account
)
Table(
    "pieces", metadata,
    _col("session_id", T()), _col("offset", BigInteger), _col("length", BigInteger), _col("blocks", LargeBinary),
    PrimaryKeyConstraint("session_id", "offset"),
)
entries = Table(
    "entries", metadata,
    _col("namespace_id", T()), _col("path_lower", T()), _col("parent_lower", T()), _col("path_display", T()),
    _col("name", T()), _col("kind", T()), _col("id", T()), _col("seq", BigInteger), _col("rev", T()),
    _col("size", BigInteger), _col("content_hash", T()), _col("blocks", LargeBinary),
    _col("client_modified", Float), _col("server_modified", Float),
    PrimaryKeyConstraint("namespace_id", "path_lower"),
    Index("entries_parent", "namespace_id", "parent_lower", "path_lower"),
    Index("entries_id", "id"),
    Index("entries_seq", "namespace_id", "seq"),
)
Index("entries_rev", entries.c.rev, sqlite_where=entries.c.rev != "", postgresql_where=entries.c.rev != "")
Table(
    "revisions", metadata,
    _col("rev", T(), primary_key=True), _col("namespace_id", T()), _col("path_lower", T()),
    _col("path_display", T()), _col("name", T()), _col("id", T()), _col("seq", BigInteger), _col("size", BigInteger),
    _col("content_hash", T()), _col("blocks", LargeBinary), _col("client_modified", Float),
    _col("server_modified", Float),
    Index("revisions_id", "id"), Index("revisions_path", "namespace_id", "path_lower"),
)
Table(
    "jobs", metadata,
    _col("job_id", T(), primary_key=True), _col("account_id", T()), _col("kind", T()), _col("state", T()),
    _col("created", Float), _col("request", T()), _col("result", T(), null=True), _col("completed", Float, null=True),
    # 0002: which node runs the job and until when its lease holds; a job held back until run_after.
    _col("owner", T(), null=True), _col("lease_until", Float, null=True), _col("run_after", Float, null=True),
    Index("jobs_pending", "state", "created"),
)
teams = Table(
    "teams", metadata,
    _col("team_id", T(), primary_key=True), _col("name", _text(nocase=True), unique=True),
    _col("root_namespace_id", T()), _col("created", Float), _col("transport_limit", BigInteger, null=True),
)
Index("teams_name_lower", func.lower(teams.c.name), unique=True)
members = Table(
    "team_members", metadata,
    _col("team_member_id", T(), primary_key=True), _col("team_id", T()), _col("account_id", T()),
    _col("is_admin", Integer), _col("joined", Float), _col("removed", Float, null=True),
    _col("suspended", Float, null=True),  # 0003
    Index("team_members_team", "team_id", "team_member_id"),
)
Index("team_members_account", members.c.account_id, unique=True,
      sqlite_where=members.c.removed.is_(None), postgresql_where=members.c.removed.is_(None))
Table(
    "team_namespaces", metadata,
    _col("namespace_id", T(), primary_key=True), _col("team_id", T()), _col("kind", T()), _col("name", T()),
    _col("team_member_id", T(), null=True),
    Index("team_namespaces_team", "team_id", "namespace_id"),
)
Table(
    "team_tokens", metadata,
    _col("token_key", T(), primary_key=True), _col("team_id", T()), _col("admin_member_id", T(), null=True),
    _col("scopes", T()), _col("created", Float),
)
Table("token_rate_limits", metadata, _col("token_key", T(), primary_key=True), _col("per_second", Float))
Table(
    "transport_usage", metadata,
    _col("team_id", T()), _col("month", T()), _col("calls", BigInteger, server_default=text("0")),
    _col("denied", BigInteger, server_default=text("0")),
    PrimaryKeyConstraint("team_id", "month"),
)
# 0004: token buckets of rate-limited tokens, shared by the nodes of one PostgreSQL database.
Table(
    "rate_buckets", metadata,
    _col("bucket_key", T(), primary_key=True), _col("level", Float), _col("stamp", Float), _col("admitted", Boolean),
)
