"""analytics: auto-replied and unsubscribed counters

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 08:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TABLES = ("analytics_daily", "analytics_campaign_daily")
COLUMNS = ("auto_replied", "unsubscribed")


def upgrade() -> None:
    # server_default fills the rows already counted (none of their events could have counted these); it is then
    # dropped so the schema matches the models, which give every counter explicitly.
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.alter_column(column, server_default=None)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.drop_column(column)
