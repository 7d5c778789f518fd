"""warmup: per-inbox ramp settings, warmup messages (placement on the sender's side), daily warmup counts

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 08:18:17.976555
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imail.models.base
from sqlalchemy import Text  # noqa: F401  (JSON columns render their PostgreSQL variant with Text)


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_warmup',
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('start_volume', sa.Integer(), nullable=False),
    sa.Column('daily_increment', sa.Integer(), nullable=False),
    sa.Column('ceiling', sa.Integer(), nullable=False),
    sa.Column('weekdays_only', sa.Boolean(), nullable=False),
    sa.Column('enable_slow_ramp', sa.Boolean(), nullable=False),
    sa.Column('reply_rate', sa.Float(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('next_send_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_pause_reason', sa.Text(), nullable=True),
    sa.Column('paused_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_inbox_warmup_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_inbox_warmup_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('inbox_id', name=op.f('pk_inbox_warmup'))
    )
    with op.batch_alter_table('inbox_warmup', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_warmup_next_send_at', ['next_send_at'], unique=False, postgresql_where=sa.text('active'), sqlite_where=sa.text('active'))
        batch_op.create_index(batch_op.f('ix_inbox_warmup_workspace_id_livemode_inbox_id'), ['workspace_id', 'livemode', 'inbox_id'], unique=False)

    # Inboxes whose warmup was started before warmup was built get the default ramp (active ones join the pool).
    op.execute(sa.text(
        "INSERT INTO inbox_warmup (inbox_id, workspace_id, livemode, start_volume, daily_increment, ceiling, "
        "weekdays_only, enable_slow_ramp, reply_rate, active) "
        "SELECT id, workspace_id, livemode, 2, 2, 40, :no, :no, 0.3, warmup_status = 'active' "
        "FROM inboxes WHERE warmup_status <> 'off'"
    ).bindparams(no=False))

    op.create_table('warmup_daily',
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('replies_sent', sa.Integer(), nullable=False),
    sa.Column('inbox', sa.Integer(), nullable=False),
    sa.Column('spam', sa.Integer(), nullable=False),
    sa.Column('replies_received', sa.Integer(), nullable=False),
    sa.Column('bounced', sa.Integer(), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_warmup_daily_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_warmup_daily_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('inbox_id', 'day', name=op.f('pk_warmup_daily'))
    )
    with op.batch_alter_table('warmup_daily', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_warmup_daily_workspace_id_livemode_day'), ['workspace_id', 'livemode', 'day'], unique=False)

    op.create_table('warmup_messages',
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('recipient_inbox_id', sa.String(length=40), nullable=True),
    sa.Column('from_email', sa.String(length=320), nullable=False),
    sa.Column('to_email', sa.String(length=320), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('parent_id', sa.String(length=40), nullable=True),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('message_id_header', sa.String(length=255), nullable=False),
    sa.Column('in_reply_to', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('placement', sa.String(length=8), nullable=True),
    sa.Column('replied', sa.Boolean(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('due_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('placed_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_warmup_messages_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_inbox_id'], ['inboxes.id'], name=op.f('fk_warmup_messages_recipient_inbox_id_inboxes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_warmup_messages_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warmup_messages'))
    )
    with op.batch_alter_table('warmup_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_warmup_messages_inbox_id_sent_at'), ['inbox_id', 'sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_warmup_messages_message_id_header'), ['message_id_header'], unique=True)
        batch_op.create_index('ix_warmup_messages_queued', ['due_at'], unique=False, postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))
        batch_op.create_index(batch_op.f('ix_warmup_messages_workspace_id_livemode_id'), ['workspace_id', 'livemode', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('warmup_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_warmup_messages_workspace_id_livemode_id'))
        batch_op.drop_index('ix_warmup_messages_queued', postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))
        batch_op.drop_index(batch_op.f('ix_warmup_messages_message_id_header'))
        batch_op.drop_index(batch_op.f('ix_warmup_messages_inbox_id_sent_at'))

    op.drop_table('warmup_messages')
    with op.batch_alter_table('warmup_daily', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_warmup_daily_workspace_id_livemode_day'))

    op.drop_table('warmup_daily')
    with op.batch_alter_table('inbox_warmup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_warmup_workspace_id_livemode_inbox_id'))
        batch_op.drop_index('ix_inbox_warmup_next_send_at', postgresql_where=sa.text('active'), sqlite_where=sa.text('active'))

    op.drop_table('inbox_warmup')
