"""Several nodes on one database: session append leases and job leases.

sessions.lock_owner/lock_until: the node appending to a sequential session holds its staged bytes
until then.  jobs.owner/lease_until: the node running a job, and until when (a dead node's jobs are
taken over once it passes); jobs.run_after: a job held back until then (test servers' job_stuck fault).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.add_column("sessions", sa.Column("lock_owner", _TEXT, nullable=True))
    op.add_column("sessions", sa.Column("lock_until", sa.Float, nullable=True))
    op.add_column("jobs", sa.Column("owner", _TEXT, nullable=True))
    op.add_column("jobs", sa.Column("lease_until", sa.Float, nullable=True))
    op.add_column("jobs", sa.Column("run_after", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        for column in ("run_after", "lease_until", "owner"):
            jobs.drop_column(column)
    with op.batch_alter_table("sessions") as sessions:
        for column in ("lock_until", "lock_owner"):
            sessions.drop_column(column)
