"""Suspended team members: team_members.suspended is when the member was suspended (None: not).

A suspended member stays on the team (their home and the team's namespaces stay theirs) but can do
nothing until unsuspended: their tokens and Select-User as them answer 401 user_suspended.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("team_members", sa.Column("suspended", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("team_members") as members:
        members.drop_column("suspended")
