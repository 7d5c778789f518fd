"""a campaign's due states by due time: while more is due than one claim takes, each claim takes a share of
every campaign's oldest (one campaign's launch no longer holds the others' first emails back)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_sequence_states_campaign_due",
        "sequence_states",
        ["campaign_id", "due_at"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_sequence_states_campaign_due", table_name="sequence_states")
