"""sending pause: an inbox's campaign sending paused by bounce protection, an SMTP policy rejection or by hand

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imail.models.base

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sending_paused_at', imail.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sending_paused_reason', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('sending_paused_detail', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sending_resumed_at', imail.models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_inbox_id_created_at'), ['inbox_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_inbox_id_created_at'))
    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.drop_column('sending_resumed_at')
        batch_op.drop_column('sending_paused_detail')
        batch_op.drop_column('sending_paused_reason')
        batch_op.drop_column('sending_paused_at')
