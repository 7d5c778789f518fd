"""Campaign `sent_today` and `reply_rate_7d` come from the rollups."""

from __future__ import annotations

from datetime import timedelta

import imail.events.service as event_service
from imail.events.service import record_event
from imail.kit.clock import utcnow
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from tests.fixtures.outreach import create_campaign, make_inbox


async def test_sent_today_and_reply_rate_7d(client, database, workspace, monkeypatch):
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = (await create_campaign(client, workspace.headers(), [inbox]))["id"]
    other = (await create_campaign(client, workspace.headers(), [inbox], name="other"))["id"]
    fresh = (await create_campaign(client, workspace.headers(), [inbox], name="fresh"))["id"]
    now = utcnow()
    tenant = Tenant(workspace.workspace_id, True)

    async def sent(campaign_id: str, ago: timedelta, livemode: bool = True) -> str:
        message_id = new_id("msg")
        monkeypatch.setattr(event_service, "utcnow", lambda: now - ago)
        async with database.transaction() as session:
            await record_event(
                session,
                Tenant(tenant.workspace_id, livemode),
                "email.sent",
                {"message_id": message_id, "campaign_id": campaign_id, "inbox_id": inbox, "step": 1},
            )
        return message_id

    async def replied(message_id: str) -> None:
        monkeypatch.setattr(event_service, "utcnow", lambda: now)
        async with database.transaction() as session:
            await record_event(
                session,
                tenant,
                "reply.received",
                {
                    "reply_id": new_id("rpl"),
                    "message_id": message_id,
                    "campaign_id": campaign,
                    "from_email": "a@b.test",
                },
            )

    first = await sent(campaign, timedelta(0))
    await sent(campaign, timedelta(0))
    await sent(campaign, timedelta(0))
    await sent(campaign, timedelta(days=3))
    old = await sent(campaign, timedelta(days=10))  # outside the 7 days
    await sent(other, timedelta(0))
    await sent(campaign, timedelta(0), livemode=False)  # the test ledger is not the live one
    await replied(first)
    await replied(old)  # a reply today to an old email counts today
    monkeypatch.undo()

    body = (await client.get(f"/v1/campaigns/{campaign}", headers=workspace.headers())).json()
    assert body["sent_today"] == 3
    assert body["reply_rate_7d"] == 0.5  # 2 replies / 4 sent over the last 7 UTC days
    listed = {
        c["id"]: c for c in (await client.get("/v1/campaigns", headers=workspace.headers())).json()["data"]
    }
    assert (listed[other]["sent_today"], listed[other]["reply_rate_7d"]) == (1, 0.0)
    assert (listed[fresh]["sent_today"], listed[fresh]["reply_rate_7d"]) == (0, 0.0)
    test_view = (await client.get("/v1/campaigns", headers=workspace.headers(live=False))).json()["data"]
    assert (
        test_view == []
    )  # campaigns are per ledger; the test-ledger send did not leak into the live figures
