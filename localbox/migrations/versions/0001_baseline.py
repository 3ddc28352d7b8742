"""Baseline: the schema of releases before Alembic (SQLite meta.schema_version 3, with the team tables).

Frozen: later changes go into new revisions.  SQLite data dirs of those releases are brought to this
point by the store's in-place upgrade (localbox/stores/sqlite.py) and stamped with it.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _t(nocase: bool = False) -> Any:
    return sa.Text(collation="NOCASE" if nocase else None).with_variant(sa.Text(collation="C"), "postgresql")


def _c(name: str, kind: Any, *args: Any, null: bool = False, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, kind, *args, nullable=null, **kw)


F, B, BIN, INT = sa.Float, sa.BigInteger, sa.LargeBinary, sa.Integer


def upgrade() -> None:
    op.create_table("meta", _c("key", _t(), primary_key=True), _c("value", _t()))
    op.create_table("accounts", _c("account_id", _t(), primary_key=True), _c("email", _t(True), unique=True),
                    _c("given_name", _t()), _c("surname", _t()), _c("root_namespace_id", _t()), _c("created", F),
                    _c("quota", B, null=True))
    op.create_index("accounts_email_lower", "accounts", [sa.text("lower(email)")], unique=True)
    op.create_table("tokens", _c("token_hash", _t(), primary_key=True),
                    _c("account_id", _t(), sa.ForeignKey("accounts.account_id")), _c("scopes", _t()),
                    _c("created", F, server_default=sa.text("0")), _c("prefix", _t(), server_default=sa.text("''")))
    op.create_index("tokens_account", "tokens", ["account_id"])
    op.create_table("namespaces", _c("namespace_id", _t(), primary_key=True), _c("owner_account_id", _t()),
                    _c("seq", B, server_default=sa.text("0")), _c("bytes_used", B, server_default=sa.text("0")))
    op.create_index("namespaces_owner", "namespaces", ["owner_account_id"])
    op.create_table("sessions", _c("session_id", _t(), primary_key=True), _c("account_id", _t()),
                    _c("session_type", _t()), _c("offset", B), _c("closed", INT), _c("created", F), _c("expires", F),
                    _c("blocks", BIN), _c("state", _t()))
    op.create_index("sessions_expires", "sessions", ["expires"])
    op.create_table("pieces", _c("session_id", _t()), _c("offset", B), _c("length", B), _c("blocks", BIN),
                    sa.PrimaryKeyConstraint("session_id", "offset"))
    op.create_table("entries", _c("namespace_id", _t()), _c("path_lower", _t()), _c("parent_lower", _t()),
                    _c("path_display", _t()), _c("name", _t()), _c("kind", _t()), _c("id", _t()), _c("seq", B),
                    _c("rev", _t()), _c("size", B), _c("content_hash", _t()), _c("blocks", BIN),
                    _c("client_modified", F), _c("server_modified", F),
                    sa.PrimaryKeyConstraint("namespace_id", "path_lower"))
    op.create_index("entries_parent", "entries", ["namespace_id", "parent_lower", "path_lower"])
    op.create_index("entries_id", "entries", ["id"])
    op.create_index("entries_seq", "entries", ["namespace_id", "seq"])
    op.create_index("entries_rev", "entries", ["rev"], sqlite_where=sa.text("rev != ''"),
                    postgresql_where=sa.text("rev != ''"))
    op.create_table("revisions", _c("rev", _t(), primary_key=True), _c("namespace_id", _t()),
                    _c("path_lower", _t()), _c("path_display", _t()), _c("name", _t()), _c("id", _t()),
                    _c("seq", B), _c("size", B), _c("content_hash", _t()), _c("blocks", BIN),
                    _c("client_modified", F), _c("server_modified", F))
    op.create_index("revisions_id", "revisions", ["id"])
    op.create_index("revisions_path", "revisions", ["namespace_id", "path_lower"])
    op.create_table("jobs", _c("job_id", _t(), primary_key=True), _c("account_id", _t()), _c("kind", _t()),
                    _c("state", _t()), _c("created", F), _c("request", _t()), _c("result", _t(), null=True),
                    _c("completed", F, null=True))
    op.create_index("jobs_pending", "jobs", ["state", "created"])
    op.create_table("teams", _c("team_id", _t(), primary_key=True), _c("name", _t(True), unique=True),
                    _c("root_namespace_id", _t()), _c("created", F), _c("transport_limit", B, null=True))
    op.create_index("teams_name_lower", "teams", [sa.text("lower(name)")], unique=True)
    op.create_table("team_members", _c("team_member_id", _t(), primary_key=True), _c("team_id", _t()),
                    _c("account_id", _t()), _c("is_admin", INT), _c("joined", F), _c("removed", F, null=True))
    op.create_index("team_members_account", "team_members", ["account_id"], unique=True,
                    sqlite_where=sa.text("removed IS NULL"), postgresql_where=sa.text("removed IS NULL"))
    op.create_index("team_members_team", "team_members", ["team_id", "team_member_id"])
    op.create_table("team_namespaces", _c("namespace_id", _t(), primary_key=True), _c("team_id", _t()),
                    _c("kind", _t()), _c("name", _t()), _c("team_member_id", _t(), null=True))
    op.create_index("team_namespaces_team", "team_namespaces", ["team_id", "namespace_id"])
    op.create_table("team_tokens", _c("token_key", _t(), primary_key=True), _c("team_id", _t()),
                    _c("admin_member_id", _t(), null=True), _c("scopes", _t()), _c("created", F))
    op.create_table("token_rate_limits", _c("token_key", _t(), primary_key=True), _c("per_second", F))
    op.create_table("transport_usage", _c("team_id", _t()), _c("month", _t()),
                    _c("calls", B, server_default=sa.text("0")), _c("denied", B, server_default=sa.text("0")),
                    sa.PrimaryKeyConstraint("team_id", "month"))


def downgrade() -> None:
    for table in ("transport_usage", "token_rate_limits", "team_tokens", "team_namespaces", "team_members", "teams",
                  "jobs", "revisions", "entries", "pieces", "sessions", "namespaces", "tokens", "accounts", "meta"):
        op.drop_table(table)
