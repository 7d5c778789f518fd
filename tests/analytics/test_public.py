"""`/v1/metrics/public` and the operational figures of `/v1/status/full`: no auth, cached 30 s per process
(and shared through Redis), numbers from the rollups."""

from __future__ import annotations

import asyncio

import httpx

from imail.events.service import record_event
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from tests.fixtures.outreach import make_inbox


async def _seed(database, workspace_id: str) -> None:
    inbox = await make_inbox(database, workspace_id)
    await make_inbox(database, workspace_id, status="disconnected")
    await make_inbox(database, workspace_id, livemode=False)  # test-mode inboxes are not the platform's
    async with database.transaction() as session:
        messages = []
        for livemode in (True, True, True, True, False):
            message_id = new_id("msg")
            messages.append(message_id)
            await record_event(
                session,
                Tenant(workspace_id, livemode),
                "email.sent",
                {"message_id": message_id, "campaign_id": "cmp_x", "inbox_id": inbox, "step": 1},
            )
        await record_event(
            session,
            Tenant(workspace_id, True),
            "reply.received",
            {"reply_id": new_id("rpl"), "message_id": messages[0], "from_email": "a@b.test"},
        )


async def test_public_metrics_count_live_figures_and_a_flood_computes_once(app, client, database, workspace):
    await _seed(database, workspace.workspace_id)
    first = await client.get("/v1/metrics/public")
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "public, max-age=30"
    body = first.json()
    assert (
        body["emails_sent_today"],
        body["replies_today"],
        body["active_inboxes"],
        body["reply_rate_7d"],
    ) == (4, 1, 1, 0.25)

    # more sends now do not show for 30 s: 1,000 anonymous requests, one computation
    await _seed(database, workspace.workspace_id)
    sem = asyncio.Semaphore(50)

    async def hit() -> dict:
        async with sem:
            response = await client.get("/v1/metrics/public")
            assert response.status_code == 200
            return response.json()

    answers = await asyncio.wait_for(asyncio.gather(*(hit() for _ in range(1000))), 120)
    assert all(a == body for a in answers)
    assert app.state.public_metrics_compute.calls == 1


async def test_public_metrics_are_shared_through_redis(settings, database, workspace, redis_url):
    from imail.main import create_app

    await _seed(database, workspace.workspace_id)
    configured = settings.model_copy(update={"redis_url": redis_url})
    one, two = create_app(configured), create_app(configured)
    async with one.router.lifespan_context(one), two.router.lifespan_context(two):
        await one.state.redis.delete(
            *[k async for k in one.state.redis.scan_iter("imail:public:metrics:*")] or ["-"]
        )
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://t") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://t") as b,
        ):
            first = (await a.get("/v1/metrics/public")).json()
            for _ in range(20):
                assert (await b.get("/v1/metrics/public")).json() == first
        assert one.state.public_metrics_compute.calls == 1
        assert two.state.public_metrics_compute.calls == 0  # the second process read the first one's value


async def test_status_full_adds_operational_figures(client, database):
    body = (await client.get("/v1/status/full")).json()
    operations = body["operations"]
    assert set(operations) == {
        "workers_alive",
        "sending_lag_seconds",
        "claims_held_by_dead_workers",
        "webhook_backlog",
        "imap_readers_connected",
    }
    assert operations["webhook_backlog"] == 0 and operations["sending_lag_seconds"] == 0.0
