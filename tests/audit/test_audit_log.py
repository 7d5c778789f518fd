"""The audit log: successful API changes recorded (who, what, when, from where) in the request's transaction,
failed ones and reads never; no secret ever stored; filters, cursor pages, scope, tenants; CLI changes;
retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from imail.audit import service as audit
from imail.kit import clock
from imail.models import AuditLog
from imail.workers.context import WorkerContext
from imail.workers.maintenance import prune_audit_log
from tests.conftest import make_settings
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, create_campaign


async def entries(client, headers, query: str = "") -> list[dict]:
    response = await client.get(f"/v1/audit-logs?limit=100&{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def all_rows(database) -> list[AuditLog]:
    async with database.transaction() as session:
        return list((await session.execute(select(AuditLog).order_by(AuditLog.id))).scalars())


async def test_changes_are_recorded_with_who_what_where(client, workspace, database):
    h = workspace.headers()
    campaign = await create_campaign(client, h, [])
    created = await client.post(
        "/v1/leads", headers=h, json={"campaign_id": campaign["id"], "email": "a@example.com"}
    )
    lead = created.json()
    await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"first_name": "Ann"})
    await client.get(f"/v1/leads/{lead['id']}", headers=h)  # a read: not recorded
    await client.get("/v1/leads", headers=h)
    await client.delete(f"/v1/leads/{lead['id']}", headers=h)

    found = await entries(client, h)
    assert [(e["method"], e["route"], e["object_id"]) for e in found] == [
        ("DELETE", "/v1/leads/{lead_id}", lead["id"]),
        ("PATCH", "/v1/leads/{lead_id}", lead["id"]),
        ("POST", "/v1/leads", lead["id"]),
        ("POST", "/v1/campaigns", campaign["id"]),
    ]
    first = found[-2]
    assert first["object"] == "audit_log" and first["id"].startswith("aud_")
    assert first["actor"] == "api_key" and first["api_key_id"].startswith("key_")
    assert first["api_key_name"] is not None
    assert first["status_code"] == 201 and first["livemode"] is True
    assert first["ip_address"] == "127.0.0.1"  # httpx's ASGI transport reports this peer
    assert first["request_id"] == created.headers["x-request-id"]
    assert found[0]["path_ids"] == {"lead_id": lead["id"]} and found[0]["status_code"] == 200


async def test_failed_changes_and_reads_record_nothing(client, workspace, database):
    h = workspace.headers()
    campaign = await create_campaign(client, h, [])
    before = len(await all_rows(database))
    body = {"campaign_id": campaign["id"], "email": "dup@example.com"}
    assert (await client.post("/v1/leads", headers=h, json=body)).status_code == 201
    assert (await client.post("/v1/leads", headers=h, json=body)).status_code == 409  # duplicate
    assert (await client.post("/v1/leads", headers=h, json={"email": "x"})).status_code == 400
    assert (await client.patch("/v1/leads/lead_nope", headers=h, json={"first_name": "x"})).status_code == 404
    assert (await client.delete("/v1/leads/lead_nope", headers=h)).status_code == 404
    assert (await client.post("/v1/leads", json=body)).status_code == 401
    await client.get("/v1/campaigns", headers=h)
    assert len(await all_rows(database)) == before + 1


async def test_failure_after_recording_rolls_the_entry_back(client, workspace, database, monkeypatch):
    """The entry is written in the request's transaction: a request that fails at its commit leaves none, and
    its change is rolled back with it."""
    h = workspace.headers()
    campaign = await create_campaign(client, h, [])
    lead = await client.post(
        "/v1/leads", headers=h, json={"campaign_id": campaign["id"], "email": "r@example.com"}
    )
    before = len(await all_rows(database))

    class Broken(audit.AuditLogRepository):
        def new(self, **values):
            raise RuntimeError("the recording step failed")

    monkeypatch.setattr(audit, "AuditLogRepository", Broken)
    response = await client.patch(f"/v1/leads/{lead.json()['id']}", headers=h, json={"first_name": "Changed"})
    assert response.status_code == 500
    monkeypatch.undo()
    assert len(await all_rows(database)) == before
    assert (await client.get(f"/v1/leads/{lead.json()['id']}", headers=h)).json()["first_name"] is None


async def test_no_secret_is_stored(client, workspace, database):
    h = workspace.headers()
    webhook = await client.post(
        "/v1/webhooks", headers=h, json={"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    )
    assert webhook.status_code == 201, webhook.text
    secret = webhook.json()["secret"]
    issued = await client.post("/v1/keys", headers=h, json={"name": "ci key"})
    assert issued.status_code == 201, issued.text
    key_secret = issued.json()["secret"] if "secret" in issued.json() else issued.json()["key"]
    rows = await all_rows(database)
    assert {r.route for r in rows} >= {"/v1/webhooks", "/v1/keys"}
    dumped = json.dumps([{c.name: str(getattr(r, c.name)) for c in AuditLog.__table__.columns} for r in rows])
    assert secret not in dumped and key_secret not in dumped
    assert workspace.live_key not in dumped


async def test_filters_pages_scope_and_tenants(client, workspace, other_workspace, database, monkeypatch):
    h = workspace.headers()
    moments = iter(datetime(2026, 3, day, 12, tzinfo=UTC) for day in range(1, 20))
    monkeypatch.setattr(clock, "utcnow", lambda: next(moments))
    campaign = await create_campaign(client, h, [])  # March 1
    second_key = await make_key(database, workspace.workspace_id)
    lead = await client.post(
        "/v1/leads",
        headers=bearer(second_key),
        json={"campaign_id": campaign["id"], "email": "b@example.com"},
    )  # March 2
    lead_id = lead.json()["id"]
    await client.patch(f"/v1/leads/{lead_id}", headers=h, json={"title": "CTO"})  # March 3
    await create_campaign(client, other_workspace.headers(), [])
    monkeypatch.undo()

    found = await entries(client, h)
    assert len(found) == 3
    second_key_id = found[1]["api_key_id"]
    assert [e["object_id"] for e in await entries(client, h, f"api_key_id={second_key_id}")] == [lead_id]
    assert len(await entries(client, h, f"object_id={lead_id}")) == 2
    assert len(await entries(client, h, "method=patch")) == 1
    assert len(await entries(client, h, "route=/v1/campaigns")) == 1
    assert len(await entries(client, h, "actor=api_key")) == 3 and await entries(client, h, "actor=cli") == []
    since = await entries(client, h, "since=2026-03-02T00:00:00Z&until=2026-03-03T00:00:00Z")
    assert [e["object_id"] for e in since] == [lead_id]
    assert_error(
        await client.get("/v1/audit-logs?since=2026-03-03T00:00:00Z&until=2026-03-02T00:00:00Z", headers=h),
        400,
        "since",
    )
    assert_error(await client.get("/v1/audit-logs?actor=robot", headers=h), 400, "actor")

    page = await client.get("/v1/audit-logs?limit=2", headers=h)
    body = page.json()
    assert body["pagination"]["has_more"] is True
    rest = await client.get(f"/v1/audit-logs?limit=2&cursor={body['pagination']['next_cursor']}", headers=h)
    ids = [e["id"] for e in body["data"]] + [e["id"] for e in rest.json()["data"]]
    assert ids == [e["id"] for e in found]

    # Another workspace sees only its own; the test ledger only its own.
    theirs = await entries(client, other_workspace.headers())
    assert [e["route"] for e in theirs] == ["/v1/campaigns"]
    assert await entries(client, workspace.headers(live=False)) == []

    # The workspace scope: leads keys cannot read it.
    leads_only = await make_key(database, workspace.workspace_id, scopes=["leads:write"])
    assert_error(await client.get("/v1/audit-logs", headers=bearer(leads_only)), 403, None)
    admin = await make_key(database, workspace.workspace_id, scopes=["workspace:read"])
    assert (await client.get("/v1/audit-logs", headers=bearer(admin))).status_code == 200


async def test_retention_prunes_old_entries(client, workspace, database, settings):
    h = workspace.headers()
    await create_campaign(client, h, [])
    await create_campaign(client, h, [])
    assert len(await all_rows(database)) == 2
    now = datetime.now(UTC)
    ctx = WorkerContext(
        settings=make_settings(settings.database_url, audit_log_retention_days=30),
        database=database,
        redis=None,
        http=None,  # type: ignore[arg-type]
        instance_id="test",
        clock=lambda: now + timedelta(days=29),
    )
    assert await prune_audit_log(ctx) == 0
    ctx.clock = lambda: now + timedelta(days=31)
    assert await prune_audit_log(ctx) == 2
    assert await all_rows(database) == []
    # Batches: more entries than one batch are all pruned.
    await create_campaign(client, h, [])
    await create_campaign(client, h, [])
    await create_campaign(client, h, [])
    assert await audit.prune(database, 1, now + timedelta(days=2), batch=2) == 3


def imail(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imail.cli", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_cli_changes_are_recorded(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")}
    env["IMAIL_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    assert imail("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    created = json.loads(imail("workspaces", "create", "Acme", "--json", env=env, cwd=tmp_path).stdout)
    workspace_id = created["workspace_id"]
    issued = imail(
        "keys", "create", "--workspace", workspace_id, "--name", "ops", "--json", env=env, cwd=tmp_path
    )
    key = json.loads(issued.stdout)
    assert imail("keys", "revoke", key["key_id"], env=env, cwd=tmp_path).returncode == 0
    footer = imail("workspaces", "set-footer", workspace_id, "--address", "1 Main St", env=env, cwd=tmp_path)
    assert footer.returncode == 0, footer.stderr
    failed = imail("keys", "revoke", "key_nope", env=env, cwd=tmp_path)
    assert failed.returncode != 0

    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as db:
        rows = db.execute(
            "SELECT actor, method, route, object_id, workspace_id FROM audit_logs ORDER BY id"
        ).fetchall()
    assert rows == [
        ("cli", "CLI", "workspaces create", workspace_id, workspace_id),
        ("cli", "CLI", "keys create", key["key_id"], workspace_id),
        ("cli", "CLI", "keys revoke", key["key_id"], workspace_id),
        ("cli", "CLI", "workspaces set-footer", workspace_id, workspace_id),
    ]
    joined = repr(rows)
    assert created["live_key"] not in joined and key["key"] not in joined
