"""inboxes: the IMAP reader's failures in a row, its last error and when, the last crash logged

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imail.models.base

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild on SQLite, whose rebuild of a table others reference would cascade);
    # the server default fills existing rows, and the model declares it too.
    op.add_column('inboxes', sa.Column('read_failures', sa.Integer(), nullable=False, server_default="0"))
    op.add_column('inboxes', sa.Column('last_read_error', sa.Text(), nullable=True))
    op.add_column('inboxes', sa.Column('last_read_error_at', imail.models.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column('inboxes', sa.Column('read_crash_logged', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for column in ('read_crash_logged', 'last_read_error_at', 'last_read_error', 'read_failures'):
        op.drop_column('inboxes', column)  # SQLite 3.35+ drops a column in place
