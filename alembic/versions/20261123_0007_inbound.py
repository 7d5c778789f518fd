"""inbound: replies, IMAP cursors and poll leases, inbound receipts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 06:23:24.675335
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import imail.models.base

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mailbox_cursors',
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('folder', sa.String(length=255), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('synced_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_mailbox_cursors_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('inbox_id', 'folder', name=op.f('pk_mailbox_cursors'))
    )
    op.create_table('mailbox_polls',
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('next_poll_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('worker_id', sa.String(length=120), nullable=True),
    sa.Column('idle', sa.Boolean(), nullable=False),
    sa.Column('polled_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_mailbox_polls_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('inbox_id', name=op.f('pk_mailbox_polls'))
    )
    with op.batch_alter_table('mailbox_polls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailbox_polls_next_poll_at'), ['next_poll_at'], unique=False)

    op.create_table('inbound_receipts',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('reply_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_inbound_receipts_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_inbound_receipts_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_inbound_receipts_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_inbound_receipts'))
    )
    with op.batch_alter_table('inbound_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_receipts_inbox_id'), ['inbox_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_receipts_message_id_kind'), ['message_id', 'kind'], unique=False)

    op.create_table('replies',
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('lead_id', sa.String(length=40), nullable=False),
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('rfc_message_id', sa.Text(), nullable=True),
    sa.Column('in_reply_to', sa.Text(), nullable=True),
    sa.Column('reference_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('from_email', sa.String(length=320), nullable=False),
    sa.Column('from_name', sa.String(length=320), nullable=False),
    sa.Column('to_emails', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('reply_text', sa.Text(), nullable=False),
    sa.Column('label', sa.String(length=24), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('label_source', sa.String(length=16), nullable=True),
    sa.Column('auto_reply', sa.Boolean(), nullable=False),
    sa.Column('out_of_office', sa.Boolean(), nullable=False),
    sa.Column('return_date', sa.Date(), nullable=True),
    sa.Column('folder', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('received_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_replies_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_replies_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_replies_lead_id_leads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_replies_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_replies_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replies'))
    )
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replies_lead_id_received_at'), ['lead_id', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_replies_workspace_id_livemode_campaign_id_id'), ['workspace_id', 'livemode', 'campaign_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_replies_workspace_id_livemode_id'), ['workspace_id', 'livemode', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_replies_workspace_id_livemode_inbox_id_id'), ['workspace_id', 'livemode', 'inbox_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replies_workspace_id_livemode_inbox_id_id'))
        batch_op.drop_index(batch_op.f('ix_replies_workspace_id_livemode_id'))
        batch_op.drop_index(batch_op.f('ix_replies_workspace_id_livemode_campaign_id_id'))
        batch_op.drop_index(batch_op.f('ix_replies_lead_id_received_at'))

    op.drop_table('replies')
    with op.batch_alter_table('inbound_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_receipts_message_id_kind'))
        batch_op.drop_index(batch_op.f('ix_inbound_receipts_inbox_id'))

    op.drop_table('inbound_receipts')
    with op.batch_alter_table('mailbox_polls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailbox_polls_next_poll_at'))

    op.drop_table('mailbox_polls')
    op.drop_table('mailbox_cursors')
