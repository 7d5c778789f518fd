"""Prometheus `/metrics`: off without a token, 401 with a wrong one; counts requests by route template."""

from __future__ import annotations

import re

import httpx

from imail.events.service import record_event
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant

TOKEN = "scrape-token-0123456789"


async def test_metrics_are_off_without_a_token(client):
    response = await client.get("/metrics")
    assert response.status_code == 404
    assert "IMAIL_METRICS_TOKEN" in response.json()["error"]["message"]


async def test_metrics_with_a_token(settings, database, workspace):
    from imail.main import create_app

    async with database.transaction() as session:
        for kind in ("email.sent", "email.sent", "email.bounced.hard"):
            await record_event(
                session, Tenant(workspace.workspace_id, True), kind, {"message_id": new_id("msg")}
            )
    application = create_app(settings.model_copy(update={"metrics_token": TOKEN}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as http,
    ):
        for _ in range(3):
            await http.get("/v1/campaigns/cmp_does_not_matter", headers=workspace.headers())
        assert (await http.get("/metrics")).status_code == 401
        assert (
            await http.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"})
        ).status_code == 401
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'imail_http_requests_total{method="GET",route="/v1/campaigns/{campaign_id}",status="404"} 3' in text
    )
    assert "cmp_does_not_matter" not in text  # templates, never raw paths
    assert re.search(
        r'imail_http_request_duration_seconds_count\{route="/v1/campaigns/\{campaign_id\}"\} 3\n', text
    )
    assert "imail_emails_sent_total 2\n" in text
    assert 'imail_bounces_total{kind="hard"} 1\n' in text
    assert "imail_webhook_backlog 0\n" in text and 'imail_queue_depth{queue="sending_due"} 0\n' in text
