"""tracking: one event per tracking link per minute (tracking_windows)

Revision ID: 0015
Revises: 0017
Create Date: 2026-12-06 02:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imail.models.base import UTCDateTime

revision = '0015'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracking_windows",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("link", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_tracking_windows_message_id_messages"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", "link", name=op.f("pk_tracking_windows")),
    )


def downgrade() -> None:
    op.drop_table("tracking_windows")
