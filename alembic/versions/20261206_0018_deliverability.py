"""deliverability: plain-text-only campaigns, an opt-in CAN-SPAM footer, and the workspace's postal address

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-06 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_only', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('include_footer', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('postal_address', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('footer_text', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('footer_text')
        batch_op.drop_column('postal_address')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('include_footer')
        batch_op.drop_column('text_only')
