"""jobs: background jobs (big CSV imports, verification runs) and their input chunks; lead verification

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import imail.models.base

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('result', JSON, nullable=False),
    sa.Column('errors', JSON, nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.Column('failure', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('lease_until', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', imail.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_jobs_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_status_lease_until'), ['status', 'lease_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_workspace_id_livemode_id'), ['workspace_id', 'livemode', 'id'], unique=False)
    op.create_table('job_items',
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', JSON, nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_items_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'seq', name=op.f('pk_job_items'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('verification_reasons', JSON, nullable=True))
        batch_op.add_column(sa.Column('verified_at', imail.models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skip_verification', sa.String(length=16), nullable=False, server_default='none'))


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('skip_verification')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('verified_at')
        batch_op.drop_column('verification_reasons')
        batch_op.drop_column('verification_status')
    op.drop_table('job_items')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_workspace_id_livemode_id'))
        batch_op.drop_index(batch_op.f('ix_jobs_status_lease_until'))
    op.drop_table('jobs')
