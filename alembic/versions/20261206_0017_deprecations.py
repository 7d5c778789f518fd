"""deprecations: who uses what a snapshot deprecated, the warnings sent, and a workspace's contact address

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imail.models.base

revision = '0017'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_email', sa.String(length=320), nullable=True))
    op.create_table('deprecation_usage',
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('api_key_id', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_used_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_deprecation_usage_api_key_id_api_keys'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_deprecation_usage_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'api_key_id', 'target', name=op.f('pk_deprecation_usage'))
    )
    op.create_table('deprecation_notices',
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('sent_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('emailed_to', sa.String(length=320), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_deprecation_notices_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'target', name=op.f('pk_deprecation_notices'))
    )


def downgrade() -> None:
    op.drop_table('deprecation_notices')
    op.drop_table('deprecation_usage')
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('contact_email')
