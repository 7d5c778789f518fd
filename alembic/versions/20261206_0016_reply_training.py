"""reply label corrections and per-workspace reply models

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 02:20:49.953378
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import imail.models.base
from sqlalchemy import Text  # noqa: F401  (JSON columns render their PostgreSQL variant with Text)


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reply_models',
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('model', sa.LargeBinary(), nullable=False),
    sa.Column('corrections', sa.Integer(), nullable=False),
    sa.Column('examples', sa.Integer(), nullable=False),
    sa.Column('trained_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_reply_models_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', name=op.f('pk_reply_models'))
    )
    op.create_table('reply_label_corrections',
    sa.Column('reply_id', sa.String(length=40), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('label', sa.String(length=24), nullable=False),
    sa.Column('previous_label', sa.String(length=24), nullable=True),
    sa.Column('previous_source', sa.String(length=16), nullable=True),
    sa.Column('created_at', imail.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['reply_id'], ['replies.id'], name=op.f('fk_reply_label_corrections_reply_id_replies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_reply_label_corrections_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reply_label_corrections'))
    )
    with op.batch_alter_table('reply_label_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_label_corrections_workspace_id_created_at'), ['workspace_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reply_label_corrections_workspace_id_livemode_id'), ['workspace_id', 'livemode', 'id'], unique=False)

    # Corrections made before they were kept on their own: the replies a person relabelled still say so.
    op.execute(sa.text(
        "INSERT INTO reply_label_corrections (id, workspace_id, livemode, reply_id, text, label, previous_label, "
        "previous_source, created_at) "
        "SELECT 'rlc_' || substr(id, 5), workspace_id, livemode, id, reply_text, label, NULL, NULL, updated_at "
        "FROM replies WHERE label_source = 'manual' AND label IS NOT NULL"
    ))



def downgrade() -> None:
    with op.batch_alter_table('reply_label_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reply_label_corrections_workspace_id_livemode_id'))
        batch_op.drop_index(batch_op.f('ix_reply_label_corrections_workspace_id_created_at'))

    op.drop_table('reply_label_corrections')
    op.drop_table('reply_models')
