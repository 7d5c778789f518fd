"""send backoff cause: whether an inbox's running backoff is its submission server's (smtp) or its OAuth
token endpoint's (oauth), which every login of the inbox then waits out

Revision ID: 0025
Revises: 0022
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0025"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inboxes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("send_backoff_cause", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inboxes", schema=None) as batch_op:
        batch_op.drop_column("send_backoff_cause")
