"""send backoff and the Sent folder: an inbox the submission server throttles (421, 4.7.x) waits, with the reason
and the next attempt; whether imail appends what it sends to the Sent folder (learned, or set per inbox)

Revision ID: 0022
Revises: 0024
Create Date: 2026-12-06 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

import imail.models.base
from alembic import op

revision = "0022"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inboxes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("send_backoff_until", imail.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("send_backoff_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("send_backoffs", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("sent_folder_mode", sa.String(length=16), nullable=False, server_default="auto")
        )
        batch_op.add_column(sa.Column("sent_filed_by_provider", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inboxes", schema=None) as batch_op:
        batch_op.drop_column("sent_filed_by_provider")
        batch_op.drop_column("sent_folder_mode")
        batch_op.drop_column("send_backoffs")
        batch_op.drop_column("send_backoff_reason")
        batch_op.drop_column("send_backoff_until")
