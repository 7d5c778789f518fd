"""idempotency records belong to one API key and keep their response encrypted; webhook secrets encrypted

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 02:20:00

Existing idempotency records are deleted: they have no API key to belong to, their bodies are in plain text,
and they are a 24-hour cache (a retry of one of them runs as a new request). Existing webhook signing secrets
are encrypted in place with the server's IMAIL_SECRET_KEY (the settings `imail db upgrade` runs with, or the
environment), so no plaintext copy is left; a database without webhook endpoints needs no key to migrate.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _webhook_box():
    from imail.config import Settings
    from imail.kit import crypto

    settings = context.config.attributes.get("imail.settings")
    if settings is None:
        # Plain `alembic upgrade`: IMAIL_SECRET_KEY, or the embedded default's key file beside the database.
        settings = Settings(database_url=context.config.get_main_option("sqlalchemy.url"))
    return crypto.secret_box(settings, crypto.WEBHOOK_SECRETS)


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM idempotency_records"))
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_constraint('uq_idempotency_records_workspace_id_livemode_key', type_='unique')
        batch_op.drop_column('response_body')
        batch_op.add_column(sa.Column('api_key_id', sa.String(length=40), nullable=False))
        batch_op.add_column(sa.Column('response_body_encrypted', sa.LargeBinary(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_idempotency_records_api_key_id_api_keys'), 'api_keys', ['api_key_id'], ['id'],
            ondelete='CASCADE',
        )
        batch_op.create_unique_constraint(
            batch_op.f('uq_idempotency_records_api_key_id_key'), ['api_key_id', 'key']
        )

    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_encrypted', sa.String(length=255), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, secret FROM webhook_endpoints")).all()
    if rows:
        box = _webhook_box()
        connection.execute(
            sa.text("UPDATE webhook_endpoints SET secret_encrypted = :sealed WHERE id = :id"),
            [{"id": row.id, "sealed": box.encrypt(row.secret)} for row in rows],
        )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.alter_column('secret_encrypted', existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column('secret')


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret', sa.String(length=100), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, secret_encrypted FROM webhook_endpoints")).all()
    if rows:
        box = _webhook_box()
        connection.execute(
            sa.text("UPDATE webhook_endpoints SET secret = :secret WHERE id = :id"),
            [{"id": row.id, "secret": box.decrypt(row.secret_encrypted)} for row in rows],
        )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_column('secret_encrypted')

    op.execute(sa.text("DELETE FROM idempotency_records"))
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_idempotency_records_api_key_id_key'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_idempotency_records_api_key_id_api_keys'), type_='foreignkey')
        batch_op.drop_column('response_body_encrypted')
        batch_op.drop_column('api_key_id')
        batch_op.add_column(sa.Column('response_body', sa.LargeBinary(), nullable=True))
        batch_op.create_unique_constraint(
            'uq_idempotency_records_workspace_id_livemode_key', ['workspace_id', 'livemode', 'key']
        )
