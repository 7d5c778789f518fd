"""The per-process cache of authenticated keys (imail.auth.cache) and the read-only session of API GETs.

A known key is not looked up again; a revoke still takes effect at once in the revoking process and, through
Redis, in every other API process (without Redis, within the cache's TTL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import httpx
import pytest
from fastapi import APIRouter
from redis.asyncio import Redis
from sqlalchemy import event, func, select, update

from imail.auth.cache import REVOCATIONS_KEY, TTL_SECONDS
from imail.auth.deps import CallerDep
from imail.auth.service import issue_key
from imail.db import SessionDep
from imail.main import create_app
from imail.models import ApiKey
from tests.conftest import make_settings
from tests.fixtures.api_servers import SERVER_SECRET, api_servers, imail_command
from tests.fixtures.factories import bearer, make_key


def key_id_of(listing: httpx.Response, secret: str) -> str:
    return next(k["id"] for k in listing.json()["data"] if k["redacted"].endswith(secret[-4:]))


async def test_a_known_key_is_not_looked_up_again(app, client, workspace):
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert (await client.get("/v1/keys", headers=workspace.headers())).status_code == 200
        assert any("key_hash" in s for s in statements), "the first request looks the key up"
        statements.clear()
        assert (await client.get("/v1/keys", headers=workspace.headers())).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # Only the list itself: no key lookup, and no BEGIN/COMMIT of its own (autocommit read).
    assert len(statements) == 1 and "key_hash" not in statements[0], statements


async def test_a_revoked_key_is_refused_at_once_by_the_revoking_process(client, database, workspace):
    other = await make_key(database, workspace.workspace_id)
    listing = await client.get("/v1/keys", headers=bearer(other))  # cached from here on
    assert listing.status_code == 200
    assert (
        await client.delete(f"/v1/keys/{key_id_of(listing, other)}", headers=workspace.headers())
    ).status_code == 200
    assert (await client.get("/v1/keys", headers=bearer(other))).status_code == 401


@pytest.mark.slow
async def test_another_process_notices_a_revoke_within_the_ttl_without_redis(
    database_url, client, database, workspace
):
    other = await make_key(database, workspace.workspace_id)
    with api_servers(1, {"IMAIL_DATABASE_URL": database_url, "IMAIL_REDIS_URL": ""}) as [server]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as remote:
            listing = await remote.get("/v1/keys", headers=bearer(other))
            assert listing.status_code == 200  # the server now holds the key in its cache
            # It cached the key before it answered, so its entry has expired by then + TTL (the monotonic
            # clock is the machine's, shared by both processes): a request sent after that must be refused.
            # Told apart by when each request was sent, not by how long they took, so a busy machine changes
            # nothing.
            expired_by = time.monotonic() + TTL_SECONDS
            revoked = await client.delete(
                f"/v1/keys/{key_id_of(listing, other)}", headers=workspace.headers()
            )
            assert revoked.status_code == 200
            while True:
                sent_at = time.monotonic()
                status = (await remote.get("/v1/keys", headers=bearer(other))).status_code
                if status != 200:
                    break
                assert sent_at < expired_by, "still accepted after the cache's entry expired"
                await asyncio.sleep(0.2)
            assert status == 401


@pytest.mark.slow
async def test_a_revoke_reaches_another_process_at_once_through_redis(
    database_url, redis_url, database, workspace
):
    """The other process refuses the key on its very next request, long before its cached entry would
    expire."""
    app = create_app(make_settings(database_url, redis_url=redis_url))
    env = {"IMAIL_DATABASE_URL": database_url, "IMAIL_REDIS_URL": redis_url}
    async with app.router.lifespan_context(app):
        local = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://imail.test")
        with api_servers(1, env) as [server]:
            async with local, httpx.AsyncClient(base_url=server.base_url, timeout=30) as remote:
                for _attempt in range(3):
                    secret = await make_key(database, workspace.workspace_id)
                    warmed = time.monotonic()
                    listing = await remote.get("/v1/keys", headers=bearer(secret))
                    assert listing.status_code == 200  # cached by the server from here on
                    revoked = await local.delete(
                        f"/v1/keys/{key_id_of(listing, secret)}", headers=workspace.headers()
                    )
                    assert revoked.status_code == 200
                    assert (await remote.get("/v1/keys", headers=bearer(secret))).status_code == 401
                    if time.monotonic() - warmed < TTL_SECONDS:
                        return  # refused while the server's entry was still fresh: the announcement did it
                pytest.fail("the machine is too slow to tell the Redis announcement from the TTL")


@pytest.mark.slow
async def test_a_revoke_from_the_cli_is_announced_through_redis(
    database_url, redis_url, database, workspace, tmp_path
):
    counter = Redis.from_url(redis_url)
    try:
        before = int(await counter.get(REVOCATIONS_KEY) or 0)
        async with database.transaction() as session:
            issued = await issue_key(session, workspace.workspace_id, True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")},
            "IMAIL_DATABASE_URL": database_url,
            "IMAIL_REDIS_URL": redis_url,
            "IMAIL_SECRET_KEY": SERVER_SECRET,
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [*imail_command(), "keys", "revoke", issued.key.id],
            check=False,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert int(await counter.get(REVOCATIONS_KEY) or 0) > before
    finally:
        await counter.aclose()


async def test_a_get_of_the_api_cannot_write(settings, database, workspace):
    """GETs of /v1 run on a read-only session without a transaction: a write there is a bug and fails loudly
    instead of committing half of what the request did."""
    app = create_app(settings)
    probe = APIRouter(prefix="/v1")

    @probe.get("/probe/update")
    async def writes_with_a_statement(caller: CallerDep, session: SessionDep):
        await session.execute(
            update(ApiKey).where(ApiKey.workspace_id == caller.workspace_id).values(name="written")
        )
        return {}

    @probe.get("/probe/add")
    async def writes_with_the_unit_of_work(caller: CallerDep, session: SessionDep):
        key = (await session.execute(select(ApiKey).where(ApiKey.id == caller.key_id))).scalar_one()
        key.name = "written"
        return {}

    app.include_router(probe)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://x") as client,
    ):
        for path in ("/v1/probe/update", "/v1/probe/add"):
            response = await client.get(path, headers=workspace.headers())
            assert response.status_code == 500, response.text
            assert response.json()["error"]["code"] == "internal_error"
    async with database.transaction() as session:
        written = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.name == "written")
        )
    assert written == 0
