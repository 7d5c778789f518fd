"""Idempotency-Key on POST: replayed for a retry, 409 for another body, never executed twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import event, func, select, update

from imail.auth.cache import CallerCache
from imail.kit.clock import utcnow
from imail.models import ApiKey, IdempotencyRecord


async def _key_count(database, workspace_id: str) -> int:
    async with database.transaction() as session:
        return (
            await session.execute(
                select(func.count()).select_from(ApiKey).where(ApiKey.workspace_id == workspace_id)
            )
        ).scalar_one()


async def test_a_retry_replays_the_first_response(client, database, workspace):
    headers = workspace.headers(**{"Idempotency-Key": "create-ci-key-1"})
    first = await client.post("/v1/keys", headers=headers, json={"name": "ci"})
    second = await client.post("/v1/keys", headers=headers, json={"name": "ci"})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert await _key_count(database, workspace.workspace_id) == 3


async def test_same_key_with_another_body_is_409(client, workspace):
    headers = workspace.headers(**{"Idempotency-Key": "k-2"})
    assert (await client.post("/v1/keys", headers=headers, json={"name": "a"})).status_code == 201
    clash = await client.post("/v1/keys", headers=headers, json={"name": "b"})
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "conflict"
    assert clash.json()["error"]["field"] == "Idempotency-Key"


async def test_keys_are_scoped_to_the_workspace_and_ledger(client, database, workspace, other_workspace):
    headers = {"Idempotency-Key": "shared-name"}
    a = await client.post("/v1/keys", headers=workspace.headers(**headers), json={"name": "x"})
    b = await client.post("/v1/keys", headers=other_workspace.headers(**headers), json={"name": "x"})
    t = await client.post("/v1/keys", headers=workspace.headers(live=False, **headers), json={"name": "x"})
    assert a.status_code == b.status_code == t.status_code == 201
    assert len({a.json()["id"], b.json()["id"], t.json()["id"]}) == 3


async def test_concurrent_requests_with_one_key_execute_once(client, database, workspace):
    headers = workspace.headers(**{"Idempotency-Key": "race"})
    responses = await asyncio.gather(
        *(client.post("/v1/keys", headers=headers, json={"name": "race"}) for _ in range(12))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created_ids) == 1
    assert await _key_count(database, workspace.workspace_id) == 3


async def test_a_failed_request_does_not_burn_the_key(client, workspace):
    headers = workspace.headers(**{"Idempotency-Key": "fix-and-retry"})
    bad = await client.post("/v1/keys", headers=headers, json={"scopes": ["nope"]})
    assert bad.status_code == 400
    good = await client.post("/v1/keys", headers=headers, json={"scopes": ["nope"][:0]})
    assert good.status_code == 201


async def test_expired_records_are_forgotten(client, database, workspace):
    headers = workspace.headers(**{"Idempotency-Key": "old"})
    first = await client.post("/v1/keys", headers=headers, json={"name": "old"})
    async with database.transaction() as session:
        await session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25)))
    again = await client.post("/v1/keys", headers=headers, json={"name": "old"})
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]


async def test_malformed_idempotency_key_is_400(client, workspace):
    response = await client.post(
        "/v1/keys", headers=workspace.headers(**{"Idempotency-Key": "x" * 256}), json={}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"


async def test_without_a_valid_api_key_the_route_answers_401(client):
    response = await client.post(
        "/v1/keys", headers={"Idempotency-Key": "k", "Authorization": "Bearer nope"}, json={}
    )
    assert response.status_code == 401


async def test_a_post_with_an_idempotency_key_looks_the_key_up_once(app, client, workspace):
    """The key is checked before the body (auth.middleware) and the route takes that check as is: one parse of
    the header, one lookup. A cache that forgets at once makes every lookup reach the database, so the lookups
    are counted as the statements that read the key by its hash."""
    app.state.callers = CallerCache(ttl=0)
    lookups: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "key_hash" in statement:
            lookups.append(statement)

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        created = await client.post(
            "/v1/keys",
            headers=workspace.headers(**{"Idempotency-Key": "looked-up-once"}),
            json={"name": "ci"},
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert created.status_code == 201, created.text
    assert len(lookups) == 1, lookups
