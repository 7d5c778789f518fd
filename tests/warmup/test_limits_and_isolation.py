"""Warmup next to a campaign: both together never pass the inbox's daily limit, a slow-ramping warming inbox's
campaign sends are capped by the ramp, and no warmup email ever shows up in campaign analytics, replies or
lead events — even one from a lead's own address under the campaign's subject."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pytest

from imail.models import Event, Lead, Reply, SequenceState
from imail.models.sending import Message, SendCounter
from imail.warmup import content
from tests.warmup.conftest import Pool

SUBJECT = "Quick question"
ALL_DAY = {
    "timezone": "UTC",
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "00:00",
    "end": "24:00",
}
DAYS = [date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28)]


async def test_warmup_and_campaign_share_the_daily_limit_and_warmup_never_leaks(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
):
    # Every warmup email gets the campaign's subject: only the marker keeps B's warmup mail from reading as a
    # reply.
    monkeypatch.setattr(content, "SUBJECTS", (SUBJECT,))
    pool.ctx.extra["warmup.rng"] = random.Random(7)
    # B answers every warmup email of A's (A's reply_rate), in thread; A answers none of B's.
    a = await pool.inbox(
        {"start_volume": 4, "daily_increment": 0, "ceiling": 4, "reply_rate": 1}, daily_limit=10
    )
    b = await pool.inbox({"start_volume": 4, "daily_increment": 0, "ceiling": 4, "reply_rate": 0})
    api = pool.client

    # Day 0 (Thursday), 18:00: A's 4 warmup emails, then a campaign from A; its first lead is B's own address.
    pool.clock.at(0, 18)
    await pool.send()
    steps = [
        {"subject": SUBJECT, "body": "<p>Hi {{first_name|there}}</p>", "delay": {"amount": 0, "unit": "days"}}
    ]
    created = await api.post(
        "/v1/campaigns",
        headers=pool.headers,
        json={"name": "Q4", "inbox_ids": [a], "steps": steps, "send_window": ALL_DAY},
    )
    assert created.status_code == 201, created.text
    campaign = created.json()["id"]
    lead_b = await api.post(
        "/v1/leads", headers=pool.headers, json={"campaign_id": campaign, "email": pool.email(b)}
    )
    assert lead_b.status_code == 201, lead_b.text
    assert (await api.post(f"/v1/campaigns/{campaign}/resume", headers=pool.headers)).status_code == 200
    await pool.campaign_sends()
    for n in range(24):
        response = await api.post(
            "/v1/leads",
            headers=pool.headers,
            json={"campaign_id": campaign, "email": f"lead{n}@prospects.com"},
        )
        assert response.status_code == 201, response.text
    await pool.campaign_sends()
    await pool.read()

    # Day 1 (Friday): slow ramp on: A's campaign sends are capped by the ramp (4), next to its 4 warmup
    # emails.
    patched = await api.patch(
        f"/v1/inboxes/{a}", headers=pool.headers, json={"warmup": {"enable_slow_ramp": True}}
    )
    assert patched.status_code == 200 and patched.json()["warmup"]["enable_slow_ramp"] is True
    pool.clock.at(1, 18)
    await pool.send()
    await pool.campaign_sends()
    await pool.read()

    # Day 2 (Saturday): slow ramp off, the campaign runs first and takes the whole limit: no room left for
    # warmup.
    await api.patch(f"/v1/inboxes/{a}", headers=pool.headers, json={"warmup": {"enable_slow_ramp": False}})
    pool.clock.at(2, 1)
    await pool.campaign_sends()
    pool.clock.at(2, 18)
    await pool.send()
    await pool.read()
    shown = (await pool.get(a))["warmup"]["today"]
    assert (shown["target"], shown["sent"]) == (4, 0)

    from_a = Counter(
        (at.date(), "warmup" if m.message.get(content.HEADER) else "campaign")
        for at, m in pool.router.accepted
        if m.envelope_from == pool.email(a)
    )
    assert [(from_a[(d, "warmup")], from_a[(d, "campaign")]) for d in DAYS] == [(4, 6), (4, 4), (0, 10)]
    counters = {c.day: c.sent for c in await pool.rows(SendCounter, SendCounter.scope_id == a)}
    assert [counters[d] for d in DAYS] == [10, 8, 10]

    # B wrote to A every day under the campaign's subject, from a lead's address, and answered A's warmup in
    # thread: the reader recorded placements, and nothing else.
    from_b = [m.message for _, m in pool.router.warmup(pool.email(b))]
    assert len(from_b) >= 12 and all(m["Subject"].endswith(SUBJECT) for m in from_b)
    assert sum(1 for m in from_b if m["In-Reply-To"]) >= 4
    assert (await pool.get(b))["warmup"]["placement_7d"]["inbox"] >= 8
    assert await pool.count(Reply) == 0
    [lead] = await pool.rows(Lead, Lead.email == pool.email(b))
    [state] = await pool.rows(SequenceState, SequenceState.lead_id == lead.id)
    assert lead.status != "replied" and state.stop_reason is None
    assert await pool.count(Event, Event.type.like("reply.%")) == 0
    sent_events = await pool.rows(Event, Event.type == "email.sent")
    campaign_ids = {m.id for m in await pool.rows(Message)}
    assert len(sent_events) == 20 and {e.data["message_id"] for e in sent_events} == campaign_ids
    assert {e.type for e in await pool.rows(Event)} <= {"email.sent"}

    # Analytics: the campaign counts only campaign mail; the inbox report adds warmup rows per day.
    report = await api.get(
        f"/v1/analytics/inboxes/{a}", headers=pool.headers, params={"from": "2026-11-26", "to": "2026-11-28"}
    )
    assert report.status_code == 200, report.text
    days = report.json()["days"]
    assert [(d["sent"], d["warmup_sent"]) for d in days] == [(6, 4), (4, 4), (10, 0)]
    assert report.json()["totals"]["warmup_sent"] == 8 and report.json()["totals"]["sent"] == 20
    assert all(d["replied"] == 0 for d in days)
    # health_score reads the same rollups: 20 campaign sends, no bounce (100), no reply (0), 8 placements
    # (neutral).
    assert (await pool.get(a))["health_score"] == 65  # 0.40·100 + 0.35·70 + 0.25·0 = 64.5
    campaign_report = await api.get(
        f"/v1/analytics/campaigns/{campaign}",
        headers=pool.headers,
        params={"from": "2026-11-26", "to": "2026-11-28"},
    )
    assert campaign_report.json()["totals"]["sent"] == 20 and campaign_report.json()["totals"]["replied"] == 0
    csv = await api.get(
        f"/v1/analytics/inboxes/{a}",
        headers=pool.headers,
        params={"from": "2026-11-26", "to": "2026-11-28", "format": "csv"},
    )
    header, first = csv.text.splitlines()[:2]
    assert header.endswith(
        "warmup_sent,warmup_replies_sent,warmup_inbox,warmup_spam,warmup_replies_received,warmup_bounced"
    )
    assert first.startswith("2026-11-26,6,")
