"""lead tags (a row per tag) and the audit log

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-06 05:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import imail.models.base

revision = '0024'
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lead_tags',
    sa.Column('lead_id', sa.String(length=40), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_tags_lead_id_leads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_lead_tags_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('lead_id', 'tag', name=op.f('pk_lead_tags'))
    )
    op.create_index(op.f('ix_lead_tags_workspace_id_livemode_tag'), 'lead_tags', ['workspace_id', 'livemode', 'tag'], unique=False)
    op.create_table('audit_logs',
    sa.Column('occurred_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=16), nullable=False),
    sa.Column('api_key_id', sa.String(length=40), nullable=True),
    sa.Column('api_key_name', sa.String(length=200), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('route', sa.String(length=300), nullable=False),
    sa.Column('object_id', sa.String(length=40), nullable=True),
    sa.Column('path_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('ip_address', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_audit_logs_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_logs'))
    )
    op.create_index(op.f('ix_audit_logs_occurred_at'), 'audit_logs', ['occurred_at'], unique=False)
    op.create_index(op.f('ix_audit_logs_workspace_id_livemode_id'), 'audit_logs', ['workspace_id', 'livemode', 'id'], unique=False)
    op.create_index(op.f('ix_audit_logs_workspace_id_livemode_object_id'), 'audit_logs', ['workspace_id', 'livemode', 'object_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_logs_workspace_id_livemode_object_id'), table_name='audit_logs')
    op.drop_index(op.f('ix_audit_logs_workspace_id_livemode_id'), table_name='audit_logs')
    op.drop_index(op.f('ix_audit_logs_occurred_at'), table_name='audit_logs')
    op.drop_table('audit_logs')
    op.drop_index(op.f('ix_lead_tags_workspace_id_livemode_tag'), table_name='lead_tags')
    op.drop_table('lead_tags')
