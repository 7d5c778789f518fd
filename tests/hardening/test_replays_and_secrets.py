"""Security review (issue 23, items 1, 2, 7 and 9), as an attacker would try it: an `Idempotency-Key` retry is
a request like any other (authenticated, scope-checked, charged to the limiter, and answered only to the key
that made the first request); secrets are not kept in plain text at rest nor printed in logs; a key may revoke
only keys whose scopes it holds itself."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest
import structlog
from sqlalchemy import event, select, text

from imail.db import SessionDep
from imail.kit.logging import configure_logging
from imail.main import create_app
from imail.models import Suppression
from tests.conftest import make_settings
from tests.fixtures import services
from tests.fixtures.factories import bearer, make_key, make_workspace
from tests.webhooks.conftest import create_endpoint, deliveries, drive, emit, receiver, worker_context  # noqa: F401

WEBHOOK = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}


def idem(key: str, token: str) -> dict[str, str]:
    return bearer(token, **{"Idempotency-Key": key})


# --- 1. a replay is a request: authenticated, authorised, limited, and only for the key that made it --------


async def test_a_scoped_key_replaying_a_key_creation_gets_its_own_403_not_the_secret(
    client, database, workspace
):
    first = await client.post("/v1/keys", headers=idem("mint-1", workspace.live_key), json={"name": "ci"})
    assert first.status_code == 201
    secret = first.json()["secret"]

    analytics = await make_key(database, workspace.workspace_id, scopes=["analytics:read"])
    stolen = await client.post("/v1/keys", headers=idem("mint-1", analytics), json={"name": "ci"})
    assert stolen.status_code == 403, stolen.text
    assert stolen.json()["error"]["code"] == "forbidden"
    assert "keys:write" in stolen.json()["error"]["message"]
    assert secret not in stolen.text and "idempotent-replayed" not in stolen.headers


async def test_a_scoped_key_replaying_a_webhook_creation_never_sees_its_signing_secret(
    client, database, workspace
):
    first = await client.post("/v1/webhooks", headers=idem("hook-1", workspace.live_key), json=WEBHOOK)
    assert first.status_code == 201, first.text
    whsec = first.json()["secret"]

    for scopes in (["analytics:read"], ["keys:write"]):
        other = await make_key(database, workspace.workspace_id, scopes=scopes)
        stolen = await client.post("/v1/webhooks", headers=idem("hook-1", other), json=WEBHOOK)
        assert stolen.status_code == 403, stolen.text
        assert whsec not in stolen.text and "idempotent-replayed" not in stolen.headers


async def test_another_key_with_the_same_idempotency_key_executes_as_its_own_request(
    client, database, workspace
):
    """Even a key allowed to make the request never gets another key's stored response: it runs its own."""
    first = await client.post("/v1/keys", headers=idem("shared", workspace.live_key), json={"name": "ci"})
    sibling = await make_key(database, workspace.workspace_id)  # unscoped, same workspace and ledger
    second = await client.post("/v1/keys", headers=idem("shared", sibling), json={"name": "ci"})
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert first.json()["secret"] not in second.text

    # Each key still gets its own response back on its own retry.
    again = await client.post("/v1/keys", headers=idem("shared", sibling), json={"name": "ci"})
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == second.json()
    mine = await client.post("/v1/keys", headers=idem("shared", workspace.live_key), json={"name": "ci"})
    assert mine.headers.get("idempotent-replayed") == "true" and mine.json() == first.json()


async def test_a_revoked_key_gets_401_on_its_retry_not_the_stored_response(client, database, workspace):
    doomed = await make_key(database, workspace.workspace_id)
    first = await client.post("/v1/keys", headers=idem("before-revoke", doomed), json={"name": "x"})
    assert first.status_code == 201
    listed = await client.get("/v1/keys", headers=workspace.headers())
    doomed_id = next(k["id"] for k in listed.json()["data"] if k["redacted"].endswith(doomed[-4:]))
    assert (await client.delete(f"/v1/keys/{doomed_id}", headers=workspace.headers())).status_code == 200
    retry = await client.post("/v1/keys", headers=idem("before-revoke", doomed), json={"name": "x"})
    assert retry.status_code == 401, retry.text
    assert first.json()["secret"] not in retry.text


@pytest.fixture
async def tight_client(database_url, database) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An app on the run's database and, when configured, the real Redis (the shared limiter); one key whose
    workspace allows a burst of 3 and then 1 request a minute."""
    workspace = await make_workspace(database, "surge", "Tight", per_minute=1, burst=3)
    app = create_app(make_settings(database_url, redis_url=services.REDIS_URL))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://imail.test") as http,
    ):
        yield http, workspace.live_key


async def test_replays_are_charged_to_the_rate_limiter(tight_client):
    http, key = tight_client
    first = await http.post("/v1/keys", headers=idem("limited", key), json={"name": "l"})
    assert first.status_code == 201 and first.headers["x-ratelimit-remaining"] == "2"
    replays = [
        await http.post("/v1/keys", headers=idem("limited", key), json={"name": "l"}) for _ in range(3)
    ]
    assert [r.status_code for r in replays] == [201, 201, 429]
    assert [r.headers.get("x-ratelimit-remaining") for r in replays] == ["1", "0", "0"]
    assert replays[0].headers["idempotent-replayed"] == "true"
    refused = replays[2]
    assert refused.json()["error"]["code"] == "rate_limited" and "retry-after" in refused.headers
    assert "idempotent-replayed" not in refused.headers and first.json()["secret"] not in refused.text


async def test_an_idempotent_post_authenticates_once(app, client, database, workspace):
    """Issue 24: the key is looked up by the one auth dependency, not again by a second parser."""
    lookups: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "FROM api_keys" in statement and "key_hash" in statement:
            lookups.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    app_engine = app.state.database.engine.sync_engine
    event.listen(app_engine, "before_cursor_execute", count)
    try:
        key = await make_key(database, workspace.workspace_id)  # never seen by this process's key cache
        lookups.clear()
        response = await client.post("/v1/keys", headers=idem("once", key), json={"name": "once"})
    finally:
        event.remove(app_engine, "before_cursor_execute", count)
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert response.status_code == 201
    assert len(lookups) == 1, lookups


# --- 2. secrets at rest and in logs -----------------------------------------------------------------------


async def _rows(database, table: str) -> str:
    async with database.engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(text(f'SELECT * FROM "{table}"'))]
    assert rows, f"{table} is empty: this test would check nothing"

    def plain(value):
        return value.decode("latin-1") if isinstance(value, (bytes, bytearray, memoryview)) else str(value)

    return json.dumps([{k: plain(v) for k, v in row.items()} for row in rows])


async def test_no_secret_is_stored_in_plain_text_and_a_retry_still_gets_it(client, database, workspace):
    key = await client.post("/v1/keys", headers=idem("k-at-rest", workspace.live_key), json={"name": "rest"})
    hook = await client.post("/v1/webhooks", headers=idem("w-at-rest", workspace.live_key), json=WEBHOOK)
    assert key.status_code == hook.status_code == 201
    api_secret = key.json()["secret"].split("_", 2)[2]
    whsec = hook.json()["secret"]
    whsec_material = whsec.removeprefix("whsec_")

    stored = await _rows(database, "idempotency_records") + await _rows(database, "webhook_endpoints")
    for needle in (api_secret, api_secret[:12], whsec_material, whsec_material[:16]):
        assert needle not in stored

    # A retry still gets the secret back (the stored body is decrypted with the server's key).
    again = await client.post(
        "/v1/keys", headers=idem("k-at-rest", workspace.live_key), json={"name": "rest"}
    )
    assert again.headers["idempotent-replayed"] == "true" and again.json()["secret"] == key.json()["secret"]
    hook_again = await client.post(
        "/v1/webhooks", headers=idem("w-at-rest", workspace.live_key), json=WEBHOOK
    )
    assert hook_again.json()["secret"] == whsec


def suppression(workspace_id: str, email: str) -> Suppression:
    return Suppression(workspace_id=workspace_id, livemode=True, type="email", value=email, reason="manual")


async def test_a_failing_sql_statement_logs_no_bound_parameter(app, client, database, workspace):
    """A statement that fails with personal data bound to it (a lead's email): neither the error SQLAlchemy
    raises nor what imail logs about it (with the traceback) may carry the value."""
    email = "jane.private-lead@example.org"

    async def duplicate(session: SessionDep) -> None:
        for _ in range(2):  # the same suppression twice: a unique violation
            session.add(suppression(workspace.workspace_id, email))
            await session.flush()

    app.add_api_route("/boom-for-the-test", duplicate, methods=["POST"])
    stream = io.StringIO()
    configure_logging("INFO", json_lines=True)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(stream), cache_logger_on_first_use=False)
    try:
        response = await client.post("/boom-for-the-test")
    finally:
        structlog.reset_defaults()
    assert response.status_code == 500 and email not in response.text
    logged = stream.getvalue()
    assert "unhandled error" in logged and "Traceback" in logged, (
        "nothing was logged: this test checks nothing"
    )
    assert email not in logged and "jane.private" not in logged

    async with database.transaction() as session:
        session.add(suppression(workspace.workspace_id, email))
    with pytest.raises(Exception) as raised:
        async with app.state.database.transaction() as session:
            session.add(suppression(workspace.workspace_id, email))
            await session.flush()
    assert email not in str(raised.value)
    async with database.read() as session:
        assert (await session.execute(select(Suppression.value))).scalars().all() == [email]


# --- 9. revoking keys ---------------------------------------------------------------------------------------


async def test_a_keys_write_key_cannot_revoke_a_broader_key(client, database, workspace):
    manager = await make_key(database, workspace.workspace_id, scopes=["keys:write"])
    listed = await client.get("/v1/keys", headers=bearer(manager))
    unscoped_id = next(k["id"] for k in listed.json()["data"] if k["scopes"] is None and k["livemode"])

    denied = await client.delete(f"/v1/keys/{unscoped_id}", headers=bearer(manager))
    assert denied.status_code == 403, denied.text
    error = denied.json()["error"]
    assert error["code"] == "forbidden" and "request_id" in denied.json()
    assert (await client.get("/v1/keys", headers=workspace.headers())).status_code == 200  # still alive

    broader = await client.post(
        "/v1/keys", headers=workspace.headers(), json={"scopes": ["keys:write", "leads:read"]}
    )
    assert (
        await client.delete(f"/v1/keys/{broader.json()['id']}", headers=bearer(manager))
    ).status_code == 403


async def test_a_key_may_revoke_keys_whose_scopes_it_holds(client, database, workspace):
    manager = await make_key(database, workspace.workspace_id, scopes=["keys:write", "leads:write"])
    for scopes in (["keys:read"], ["leads:read", "keys:write"], ["leads:write"]):
        target = await client.post("/v1/keys", headers=workspace.headers(), json={"scopes": scopes})
        revoked = await client.delete(f"/v1/keys/{target.json()['id']}", headers=bearer(manager))
        assert revoked.status_code == 200, (scopes, revoked.text)
        assert revoked.json()["revoked_at"] is not None
        assert (await client.get("/v1/keys", headers=bearer(target.json()["secret"]))).status_code == 401
    # The unscoped key may revoke anything, a scoped one included.
    scoped = await client.post("/v1/keys", headers=workspace.headers(), json={"scopes": ["analytics:read"]})
    assert (
        await client.delete(f"/v1/keys/{scoped.json()['id']}", headers=workspace.headers())
    ).status_code == 200


# --- 2. the migration leaves no plaintext secret behind -----------------------------------------------------

LEGACY_SECRET = "whsec_bGVnYWN5LXBsYWludGV4dC1zZWNyZXQtMDEyMzQ1Njc4OQ=="


async def _sql(url: str, statement: str, **params) -> list[dict]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return [dict(r._mapping) for r in result] if result.returns_rows else []
    finally:
        await engine.dispose()


def test_migrating_encrypts_existing_webhook_secrets_and_drops_plaintext_responses(tmp_path):
    import asyncio

    from imail.kit import crypto
    from imail.migrations import upgrade
    from tests.fixtures.databases import (
        create_postgres_database,
        create_sqlite_database,
        drop_postgres_database,
    )

    admin = services.POSTGRES_ADMIN_URL
    url = (
        create_postgres_database(admin, migrate=False)
        if admin
        else create_sqlite_database(tmp_path, migrate=False)
    )
    try:
        upgrade(url, "0010")
        now = datetime(2026, 12, 1, tzinfo=UTC)
        asyncio.run(
            _sql(
                url,
                "INSERT INTO workspaces (id, name, tier, created_at, updated_at) "
                "VALUES ('ws_1', 'Old', 'surge', :t, :t)",
                t=now,
            )
        )
        asyncio.run(
            _sql(
                url,
                "INSERT INTO webhook_endpoints (id, workspace_id, livemode, url, description, events, "
                "secret, api_version, status, created_at, updated_at) VALUES ('wh_1', 'ws_1', :y, "
                "'https://example.com/h', '', '[\"*\"]', :s, :v, 'enabled', :t, :t)",
                y=True,
                s=LEGACY_SECRET,
                v=date(2026, 5, 10),
                t=now,
            )
        )
        asyncio.run(
            _sql(
                url,
                "INSERT INTO idempotency_records (id, workspace_id, livemode, key, request_hash, "
                "response_status, response_body, created_at) VALUES ('idem_1', 'ws_1', :y, 'k', 'h', "
                "201, :b, :t)",
                y=True,
                b=b'{"secret": "imk_live_PLAINTEXT"}',
                t=now,
            )
        )

        settings = make_settings(url)
        upgrade(url, "heads", settings)

        [row] = asyncio.run(_sql(url, "SELECT * FROM webhook_endpoints"))
        assert "secret" not in row and LEGACY_SECRET not in json.dumps(row, default=str)
        box = crypto.secret_box(settings, crypto.WEBHOOK_SECRETS)
        assert box.decrypt(row["secret_encrypted"]) == LEGACY_SECRET
        assert asyncio.run(_sql(url, "SELECT * FROM idempotency_records")) == []
    finally:
        if admin:
            drop_postgres_database(admin, url)


async def test_a_multipart_upload_is_replayed_too(client, workspace):
    """The body is fingerprinted as it streams past, so a route whose form FastAPI parses before the
    dependencies run (a CSV import) is claimed and replayed like a JSON one."""
    from tests.fixtures.outreach import create_campaign

    campaign = await create_campaign(client, workspace.headers(), [])
    boundary = "imail-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="campaign_id"\r\n\r\n{campaign["id"]}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="l.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\nemail\r\nana@example.com\r\n--{boundary}--\r\n"
    ).encode()
    headers = workspace.headers(
        **{"Idempotency-Key": "csv-1", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    first = await client.post("/v1/leads/import", headers=headers, content=body)
    again = await client.post("/v1/leads/import", headers=headers, content=body)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert first.json()["created"] == 1


def test_every_post_of_the_api_runs_the_idempotency_step_after_its_guard():
    """Replays are decided in a dependency each router lists after its scope guard; a POST route without it
    would silently ignore `Idempotency-Key`, one listing it first would replay before checking scopes."""
    from fastapi.routing import APIRoute

    from imail.api import build_v1
    from imail.idempotency.deps import idempotent

    def routes(router):
        for route in router.routes:
            nested = getattr(route, "original_router", None)
            yield from routes(nested) if nested is not None else [route]

    posts = [r for r in routes(build_v1()) if isinstance(r, APIRoute) and "POST" in r.methods]
    assert len(posts) > 10
    for route in posts:
        calls = [d.dependency for d in route.dependencies]
        assert idempotent in calls, route.path
        assert calls.index(idempotent) > 0, (
            f"{route.path}: the idempotency step runs before the route's guard"
        )


async def test_a_delivery_is_signed_with_the_opened_secret_and_never_sent_unsigned(
    client,
    workspace,
    database,
    receiver,
    worker_context,  # noqa: F811
):
    """The worker opens the stored secret to sign; under a server key that cannot open it (IMAIL_SECRET_KEY
    changed without IMAIL_SECRET_KEYS_OLD), nothing is sent and the delivery log says why."""
    import hashlib
    import hmac

    from imail.workers.webhooks import UNREADABLE_SECRET, deliver_webhooks

    created = await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    await deliver_webhooks(worker_context(secret_key="a-different-server-key-0123456789-abcdefgh"))
    assert receiver.requests == []
    [row] = await deliveries(database)
    assert row.status == "pending" and row.last_error == UNREADABLE_SECRET

    await drive(worker_context(), lambda: len(receiver.requests) == 1)
    [request] = receiver.requests
    expected = hmac.new(created["secret"].encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-imail-signature"], expected)
