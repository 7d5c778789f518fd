"""campaigns leads suppressions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 05:40:18.291826
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imail.models.base
from sqlalchemy import Text  # noqa: F401  (JSON columns render their PostgreSQL variant with Text)
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('steps', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('daily_limit', sa.Integer(), nullable=False),
    sa.Column('send_window', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('track_opens', sa.Boolean(), nullable=False),
    sa.Column('track_clicks', sa.Boolean(), nullable=False),
    sa.Column('stop_on_reply', sa.Boolean(), nullable=False),
    sa.Column('custom_variables', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_campaigns_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaigns_workspace_id_livemode_id'), ['workspace_id', 'livemode', 'id'], unique=False)

    op.create_table('suppressions',
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_suppressions_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('workspace_id', 'livemode', 'type', 'value', name=op.f('uq_suppressions_workspace_id_livemode_type_value'))
    )
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppressions_workspace_id_livemode_id'), ['workspace_id', 'livemode', 'id'], unique=False)

    op.create_table('campaign_inboxes',
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('inbox_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_inboxes_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_campaign_inboxes_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'inbox_id', name=op.f('pk_campaign_inboxes'))
    )
    with op.batch_alter_table('campaign_inboxes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_inboxes_inbox_id'), ['inbox_id'], unique=False)

    op.create_table('leads',
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('first_name', sa.String(length=200), nullable=True),
    sa.Column('last_name', sa.String(length=200), nullable=True),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('timezone_source', sa.String(length=16), nullable=False),
    sa.Column('custom_variables', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('interest_status', sa.String(length=24), nullable=True),
    sa.Column('interest_updated_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_leads_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_leads_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads')),
    sa.UniqueConstraint('campaign_id', 'email', name=op.f('uq_leads_campaign_id_email'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_workspace_id_livemode_email'), ['workspace_id', 'livemode', 'email'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_workspace_id_livemode_id'), ['workspace_id', 'livemode', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_workspace_id_livemode_id'))
        batch_op.drop_index(batch_op.f('ix_leads_workspace_id_livemode_email'))

    op.drop_table('leads')
    with op.batch_alter_table('campaign_inboxes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_inboxes_inbox_id'))

    op.drop_table('campaign_inboxes')
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppressions_workspace_id_livemode_id'))

    op.drop_table('suppressions')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_workspace_id_livemode_id'))
        batch_op.drop_index(batch_op.f('ix_campaigns_status'))

    op.drop_table('campaigns')
