"""Suite-wide fixtures: one migrated database per run (PostgreSQL when configured, else SQLite),
emptied between tests; the app with its lifespan; an HTTP client speaking ASGI to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from imail.config import Settings
from imail.db import Database
from imail.main import create_app
from imail.models import Base
from imail.wiring import install_subscribers
from tests.fixtures import services
from tests.fixtures.databases import create_postgres_database, create_sqlite_database, drop_postgres_database
from tests.fixtures.dns import dns_server  # noqa: F401
from tests.fixtures.factories import WorkspaceKeys, make_workspace
from tests.fixtures.security import security  # noqa: F401

# Tests record events through services without an app or a worker context too: wire them as start-up does.
install_subscribers()

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if services.POSTGRES_ADMIN_URL:
        url = create_postgres_database(services.POSTGRES_ADMIN_URL)
        yield url
        drop_postgres_database(services.POSTGRES_ADMIN_URL, url)
    else:
        yield create_sqlite_database(tmp_path_factory.mktemp("db"))


@pytest.fixture
def postgres_url(database_url: str) -> str:
    """The run's database, for tests that need PostgreSQL itself."""
    if not database_url.startswith("postgresql"):
        services.missing_service("PostgreSQL")
    return database_url


@pytest.fixture
def redis_url() -> str:
    if not services.REDIS_URL:
        services.missing_service("Redis")
    return services.REDIS_URL


def make_settings(database_url: str, **overrides) -> Settings:
    values = dict(
        database_url=database_url,
        secret_key=TEST_SECRET,
        webhooks_allow_private=True,
        mail_allow_private=True,
        redis_url=None,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


async def _empty_tables(database: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with database.engine.begin() as conn:
        if database.is_sqlite:
            for name in tables:
                await conn.execute(text(f'DELETE FROM "{name}"'))
        else:
            await conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " CASCADE"))


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    await _empty_tables(db)
    yield db
    await db.dispose()


@pytest.fixture
async def app(settings: Settings, database: Database):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://imail.test") as http:
        yield http


@pytest.fixture
async def workspace(database: Database) -> WorkspaceKeys:
    return await make_workspace(database, "surge", "Acme")


@pytest.fixture
async def other_workspace(database: Database) -> WorkspaceKeys:
    return await make_workspace(database, "surge", "Globex")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
