"""Test mode: a separate ledger that never opens an SMTP connection, with `+tag` outcomes for customers'
CI."""

from __future__ import annotations

import pytest

from imail.models.sending import Message
from tests.sending.conftest import freeze_api_clock

STEP = {"subject": "Hi {{first_name|there}}", "body": "<p>Hello</p>"}


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


@pytest.fixture
async def test_outreach(outreach, workspace):
    outreach.headers = workspace.headers(live=False)
    inbox = await outreach.client.post(
        "/v1/inboxes",
        headers=outreach.headers,
        json={
            "email": "ci@acme.example.com",
            "smtp_host": "127.0.0.1",
            "smtp_port": 1,
            "smtp_security": "none",
            "smtp_password": "x",
            "imap_host": "127.0.0.1",
            "imap_port": 1,
            "imap_security": "none",
            "imap_password": "x",
            "sending_gap_minutes": 0,
        },
    )
    assert inbox.status_code == 201, inbox.text
    outreach.inbox_ids.append(inbox.json()["id"])
    return outreach


async def test_test_mode_records_without_smtp_and_fires_the_same_events(test_outreach, smtp_server):
    campaign = await test_outreach.campaign([STEP])
    await test_outreach.lead(campaign["id"], "plain@example.org")
    await test_outreach.resume(campaign["id"])
    assert await test_outreach.drain() == 1
    assert smtp_server.messages == []
    [message] = await test_outreach.rows(Message)
    assert message.status == "sent" and message.livemode is False
    [sent] = await test_outreach.events("email.sent")
    [delivered] = await test_outreach.events("email.delivered")
    assert sent.livemode is False and delivered.data["message_id"] == message.id


@pytest.mark.parametrize(
    ("tag", "expected", "lead_status"),
    [
        ("bounce_hard", ["email.sent", "email.bounced.hard"], "bounced"),
        ("bounce_soft", ["email.sent", "email.bounced.soft"], "active"),
        ("open", ["email.sent", "email.delivered", "email.opened"], "active"),
        ("click", ["email.sent", "email.delivered", "email.opened", "email.clicked"], "active"),
        ("reply", ["email.sent", "email.delivered", "reply.received", "reply.classified"], "replied"),
        ("interested", ["email.sent", "email.delivered", "reply.received", "reply.classified"], "replied"),
    ],
)
async def test_tags_simulate_their_outcome(test_outreach, tag, expected, lead_status):
    campaign = await test_outreach.campaign(
        [STEP, {"body": "<p>again</p>", "delay": {"amount": 1, "unit": "days"}}]
    )
    lead = await test_outreach.lead(campaign["id"], f"ana+{tag}@example.org")
    await test_outreach.resume(campaign["id"])
    await test_outreach.drain()
    events = await test_outreach.rows(__import__("imail.models", fromlist=["Event"]).Event)
    assert [e.type for e in sorted(events, key=lambda e: e.id)] == expected
    assert all(e.livemode is False for e in events)
    row = await test_outreach.lead_row(lead["id"])
    assert row.status == lead_status
    if tag == "interested":
        assert row.interest_status == "interested"
        assert [e.data["label"] for e in events if e.type == "reply.classified"] == ["interested"]


async def test_live_keys_never_see_test_messages(test_outreach, client, workspace):
    campaign = await test_outreach.campaign([STEP])
    await test_outreach.lead(campaign["id"], "ana@example.org")
    await test_outreach.resume(campaign["id"])
    await test_outreach.drain()
    as_test = await client.get(
        f"/v1/campaigns/{campaign['id']}/messages", headers=workspace.headers(live=False)
    )
    assert len(as_test.json()["data"]) == 1
    as_live = await client.get(
        f"/v1/campaigns/{campaign['id']}/messages", headers=workspace.headers(live=True)
    )
    assert as_live.status_code == 404
