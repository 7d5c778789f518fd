"""Bounce protection and SMTP policy pauses against the real SMTP sink (aiosmtpd): an inbox whose campaign
emails bounce too often, or whose server refuses us on policy (5.7.x), stops sending campaigns and says so
once; the owner can pause and resume by hand."""

from __future__ import annotations

import pytest

from imail.models import Event, Inbox, Suppression
from imail.models.sending import Message
from tests.fixtures.factories import bearer, make_key
from tests.sending.conftest import freeze_api_clock

pytestmark = pytest.mark.usefixtures("sink")

STEP = [{"subject": "Hi {{first_name|there}}", "body": "<p>A quick question.</p>"}]


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)
    monkeypatch.setattr("imail.inboxes.service.utcnow", clock)


async def add_leads(outreach, campaign_id: str, emails: list[str]) -> None:
    for email in emails:
        await outreach.lead(campaign_id, email)


async def inbox_view(outreach, inbox_id: str) -> dict:
    response = await outreach.client.get(f"/v1/inboxes/{inbox_id}", headers=outreach.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def paused_events(outreach) -> list[Event]:
    return await outreach.events("inbox.sending_paused")


async def test_too_many_hard_bounces_pause_campaign_sending_once(outreach, mailbox, sink, clock):
    inbox_id = await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign(STEP)
    await outreach.resume(campaign["id"])
    await add_leads(outreach, campaign["id"], [f"good{i}@example.org" for i in range(18)])
    sink.refuse_recipient("gone1@example.org")
    await add_leads(outreach, campaign["id"], ["gone1@example.org"])
    assert await outreach.drain() == 19
    # 1 of 19: below the 5 % threshold, and fewer than the 20 sends it waits for anyway.
    assert await paused_events(outreach) == []

    sink.refuse_recipient("gone2@example.org")
    await add_leads(outreach, campaign["id"], ["gone2@example.org"])
    clock.advance(minutes=1)
    assert await outreach.drain() == 1
    [event] = await paused_events(outreach)
    assert event.data["inbox_id"] == inbox_id and event.data["reason"] == "bounce_rate"
    assert event.data["bounce_rate"] == 0.1 and event.data["sends_considered"] == 20
    view = await inbox_view(outreach, inbox_id)
    assert view["sending_paused"] is True and view["sending_paused_reason"] == "bounce_rate"
    assert view["sending_paused_at"] is not None and "2 of the last 20" in view["sending_paused_detail"]
    assert view["status"] == "connected"  # still connected: replies and bounces are read

    # Paused: nothing more goes out, and nothing is lost.
    await add_leads(outreach, campaign["id"], ["later@example.org"])
    clock.advance(minutes=1)
    sent_before = len(sink.messages)
    assert await outreach.drain() == 0
    assert len(sink.messages) == sent_before
    # Pausing again by hand: 200, no second event.
    again = await outreach.client.post(f"/v1/inboxes/{inbox_id}/sending/pause", headers=outreach.headers)
    assert again.status_code == 200 and again.json()["sending_paused_reason"] == "bounce_rate"
    assert len(await paused_events(outreach)) == 1

    resumed = await outreach.client.post(f"/v1/inboxes/{inbox_id}/sending/resume", headers=outreach.headers)
    assert resumed.status_code == 200 and resumed.json()["sending_paused"] is False
    assert resumed.json()["sending_paused_reason"] is None
    clock.advance(days=1)
    assert await outreach.drain() == 1  # the waiting lead goes out
    # The window starts again at the resume: one more bounce (1 of 2) judges nothing until 20 new sends.
    sink.refuse_recipient("gone3@example.org")
    await add_leads(outreach, campaign["id"], ["gone3@example.org"])
    clock.advance(minutes=1)
    assert await outreach.drain() == 1
    assert len(await paused_events(outreach)) == 1
    assert (await inbox_view(outreach, inbox_id))["sending_paused"] is False


@pytest.mark.parametrize("stage", ["rcpt", "data"])
async def test_a_5_7_x_policy_rejection_pauses_the_inbox_and_suppresses_nobody(
    outreach, mailbox, sink, clock, stage
):
    inbox_id = await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign(STEP)
    await add_leads(outreach, campaign["id"], ["ana@example.org", "bea@example.org"])
    refusal = "550 5.7.1 Service unavailable; client host blocked using a reputation list"
    if stage == "rcpt":
        sink.rcpt_hook = lambda address: refusal
    else:
        sink.data_hook = lambda received: refusal
    await outreach.resume(campaign["id"])
    await outreach.drain()

    [event] = await paused_events(outreach)
    assert event.data["reason"] == "smtp_policy" and "5.7.1" in event.data["detail"]
    view = await inbox_view(outreach, inbox_id)
    assert (view["sending_paused"], view["sending_paused_reason"]) == (True, "smtp_policy")
    assert await outreach.rows(Suppression) == []
    assert await outreach.events("email.bounced.hard") == [] and await outreach.events("email.sent") == []
    messages = await outreach.rows(Message)
    assert messages and {m.status for m in messages} <= {"retry"}  # waiting, not failed
    assert all(m.attempts == 0 for m in messages)

    sink.rcpt_hook = None
    sink.data_hook = None
    clock.advance(minutes=30)
    await outreach.drain()  # paused: nothing is handed to its server
    assert len(sink.messages) == 0
    resumed = await outreach.client.post(f"/v1/inboxes/{inbox_id}/sending/resume", headers=outreach.headers)
    assert resumed.status_code == 200
    clock.advance(minutes=30)
    await outreach.drain()
    assert sorted(m.envelope_to[0] for m in sink.messages) == ["ana@example.org", "bea@example.org"]
    assert len(await outreach.events("email.sent")) == 2
    assert len(await paused_events(outreach)) == 1


async def test_pausing_by_hand_is_idempotent_scoped_and_tenant_bound(
    outreach, mailbox, sink, client, database, workspace, other_workspace, clock
):
    inbox_id = await outreach.connect_inbox(mailbox)
    url = f"/v1/inboxes/{inbox_id}/sending"
    paused = await client.post(f"{url}/pause", headers=outreach.headers)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["sending_paused"], paused.json()["sending_paused_reason"]) == (True, "manual")
    assert (await client.post(f"{url}/pause", headers=outreach.headers)).status_code == 200
    [event] = await paused_events(outreach)
    assert event.data == {
        "inbox_id": inbox_id,
        "email": mailbox.email,
        "reason": "manual",
        "detail": "paused through the API",
        "bounce_rate": None,
        "sends_considered": None,
    }
    campaign = await outreach.campaign(STEP)
    await add_leads(outreach, campaign["id"], ["ana@example.org"])
    await outreach.resume(campaign["id"])
    await outreach.drain()
    assert sink.messages == []

    reader = await make_key(database, workspace.workspace_id, scopes=["inboxes:read"])
    for action in ("pause", "resume"):
        denied = await client.post(f"{url}/{action}", headers=bearer(reader))
        assert denied.status_code == 403 and "inboxes:write" in denied.json()["error"]["message"]
        foreign = await client.post(f"{url}/{action}", headers=other_workspace.headers())
        assert foreign.status_code == 404
        test_mode = await client.post(f"{url}/{action}", headers=workspace.headers(live=False))
        assert test_mode.status_code == 404
    assert (await client.get(f"/v1/inboxes/{inbox_id}", headers=bearer(reader))).json()["sending_paused"]
    pinned = await client.post(f"{url}/resume", headers=outreach.headers | {"Imail-Version": "2026-12-06"})
    assert pinned.status_code in (400, 404)  # the route came with snapshot 2026-12-07

    assert (await client.post(f"{url}/resume", headers=outreach.headers)).status_code == 200
    assert (await client.post(f"{url}/resume", headers=outreach.headers)).status_code == 200
    clock.advance(minutes=30)
    await outreach.drain()
    assert [m.envelope_to for m in sink.messages] == [["ana@example.org"]]
    [row] = await outreach.rows(Inbox)
    assert row.sending_paused_at is None and row.sending_resumed_at is not None
    assert len(await paused_events(outreach)) == 1
