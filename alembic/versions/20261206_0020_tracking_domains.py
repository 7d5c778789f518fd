"""tracking domains: a custom host for a workspace's (or an inbox's) links, pixel and unsubscribe URLs

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imail.models.base import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

TABLES = ("workspaces", "inboxes")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("tracking_domain", sa.String(length=253), nullable=True))
            batch_op.add_column(sa.Column("tracking_domain_status", sa.String(length=16), nullable=True))
            batch_op.add_column(sa.Column("tracking_domain_checked_at", UTCDateTime(), nullable=True))
            batch_op.add_column(sa.Column("tracking_domain_reason", sa.String(length=500), nullable=True))
            batch_op.create_index(f"ix_{table}_tracking_domain", ["tracking_domain"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_tracking_domain")
            batch_op.drop_column("tracking_domain_reason")
            batch_op.drop_column("tracking_domain_checked_at")
            batch_op.drop_column("tracking_domain_status")
            batch_op.drop_column("tracking_domain")
