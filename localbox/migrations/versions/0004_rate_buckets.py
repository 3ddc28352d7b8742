"""Shared per-token rate limits: rate_buckets holds one token bucket per rate-limited key, so that
several nodes on one PostgreSQL database enforce a token's `--rate-limit` together (a single SQLite
server keeps its buckets in memory and leaves the table empty).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table("rate_buckets", sa.Column("bucket_key", _TEXT, primary_key=True, nullable=False),
                    sa.Column("level", sa.Float, nullable=False), sa.Column("stamp", sa.Float, nullable=False),
                    sa.Column("admitted", sa.Boolean, nullable=False))


def downgrade() -> None:
    op.drop_table("rate_buckets")
