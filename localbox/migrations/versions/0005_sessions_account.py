"""An index on sessions(account_id): the per-account cap on open sessions counts an account's
sessions at every upload session start, which otherwise scans the whole table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("sessions_account", "sessions", ["account_id"])


def downgrade() -> None:
    op.drop_index("sessions_account", table_name="sessions")
