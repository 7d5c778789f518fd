"""Migrating an empty database to head yields exactly the models: no drift, on both backends."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from imail.models import Base
from tests.fixtures import services
from tests.fixtures.databases import create_postgres_database, create_sqlite_database, drop_postgres_database


async def _drift(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata)

            return await conn.run_sync(diff)
    finally:
        await engine.dispose()


def test_sqlite_migrations_match_models(tmp_path):
    url = create_sqlite_database(tmp_path)
    assert asyncio.run(_drift(url)) == []


def test_postgres_migrations_match_models():
    if not services.POSTGRES_ADMIN_URL:
        services.missing_service("PostgreSQL")
    url = create_postgres_database(services.POSTGRES_ADMIN_URL)
    try:
        assert asyncio.run(_drift(url)) == []
    finally:
        drop_postgres_database(services.POSTGRES_ADMIN_URL, url)


def test_migrations_have_one_head():
    from alembic.script import ScriptDirectory

    from imail.migrations import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://")).get_heads()
    assert len(heads) == 1, f"migrations branch: heads {heads}; set down_revision to make one chain"
