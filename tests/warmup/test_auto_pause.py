"""Auto-pause: spam placement (or bounces) over the last N warmup sends past a threshold pauses warmup once,
with one `warmup.threshold_paused` (delivered only to endpoints whose version knows it) and the reason on the
inbox."""

from __future__ import annotations

from collections import Counter

from imail.models import Event, InboundReceipt, Suppression, WebhookDelivery
from imail.models.warmup import WarmupDaily, WarmupMessage
from tests.fixtures.inbound import dsn
from tests.warmup.conftest import Pool

PUBLIC_URL = "https://93.184.216.34/hooks/imail"  # a public address literal: no DNS needed


async def _endpoint(pool: Pool, version: str) -> str:
    response = await pool.client.post(
        "/v1/webhooks",
        json={"url": PUBLIC_URL, "events": ["*"]},
        headers={**pool.headers, "Imail-Version": version},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_spam_placement_over_the_threshold_pauses_warmup_once_with_one_event(pool: Pool):
    pool.settings.warmup_threshold_sends = 5
    pool.settings.warmup_spam_threshold = 0.5
    pool.settings.inbound_fetch_batch = (
        2  # placements arrive over several transactions, each judging the threshold
    )
    current = await _endpoint(pool, "2026-05-10")
    pinned = await _endpoint(pool, "2026-04-22")
    a = await pool.inbox({"start_volume": 12, "ceiling": 12, "reply_rate": 0})
    b = await pool.inbox({"start_volume": 12, "ceiling": 12, "reply_rate": 0})
    pool.router.junk.add(pool.email(b))

    pool.clock.at(0, 13)
    await pool.send()  # half of A's day (5 or 6 of its 12 slots, by its offset): enough to judge
    await pool.read()
    pool.clock.at(0, 18)
    await pool.send()  # A is paused: nothing more from it today
    await pool.read()

    sent_by_a = await pool.rows(WarmupMessage, WarmupMessage.inbox_id == a)
    assert 5 <= len(sent_by_a) < 12 and {m.placement for m in sent_by_a} == {"spam"}
    events = await pool.rows(Event, Event.type == "warmup.threshold_paused")
    assert len(events) == 1
    assert events[0].data["inbox_id"] == a and events[0].data["spam_rate"] == 1.0
    assert "spam placement 100%" in events[0].data["reason"]

    shown = await pool.get(a)
    assert shown["warmup_status"] == "paused" and shown["warmup"]["status"] == "paused"
    assert shown["warmup"]["last_pause_reason"] == events[0].data["reason"]
    assert (await pool.get(b))["warmup_status"] == "active"  # B's mail lands in A's INBOX

    deliveries = await pool.rows(WebhookDelivery, WebhookDelivery.event_id == events[0].id)
    assert [d.webhook_id for d in deliveries] == [current]  # the 2026-04-22 endpoint does not know the event
    assert pinned != current

    # Later placements of mail already sent do not pause it again.
    pool.clock.advance(hours=1)
    await pool.read()
    assert await pool.count(Event, Event.type == "warmup.threshold_paused") == 1


async def test_bounces_over_the_threshold_pause_warmup(pool: Pool, smtp_server):
    pool.settings.warmup_threshold_sends = 4
    pool.settings.warmup_bounce_threshold = 0.25
    a = await pool.inbox({"start_volume": 8, "ceiling": 8, "reply_rate": 0})
    b = await pool.inbox({"start_volume": 8, "ceiling": 8, "reply_rate": 0}, start=True)
    smtp_server.refuse_recipient(pool.email(b))  # 550 5.1.1 for everything sent to B

    pool.clock.at(0, 18)
    await pool.send()
    outcomes = await pool.rows(WarmupMessage, WarmupMessage.inbox_id == a)
    assert len(outcomes) == 4 and {m.status for m in outcomes} == {"bounced"}  # paused at the 4th
    [event] = await pool.rows(Event, Event.type == "warmup.threshold_paused")
    assert event.data["bounce_rate"] == 1.0 and "bounce rate" in event.data["reason"]
    assert (await pool.get(a))["warmup"]["last_pause_reason"] == event.data["reason"]


async def test_delivery_reports_about_warmup_mail_count_as_warmup_bounces_only(pool: Pool):
    pool.settings.warmup_threshold_sends = 3
    pool.settings.warmup_bounce_threshold = 0.5
    a = await pool.inbox({"start_volume": 3, "ceiling": 3, "reply_rate": 0})
    b = await pool.inbox({"start_volume": 3, "ceiling": 3, "reply_rate": 0}, start=True)
    pool.clock.at(0, 18)
    await pool.send()
    sent_by_a = await pool.rows(WarmupMessage, WarmupMessage.inbox_id == a)
    # B's server later reports two of A's emails undeliverable: DSNs in A's INBOX quoting their Message-IDs.
    for message in sent_by_a[:2]:
        pool.imap.append(
            pool.email(a), dsn(message.message_id_header, recipient=pool.email(b), to_email=pool.email(a))
        )
    await pool.read()

    statuses = Counter(m.status for m in await pool.rows(WarmupMessage, WarmupMessage.inbox_id == a))
    assert statuses == Counter({"bounced": 2, "sent": 1})
    [event] = await pool.rows(Event, Event.type == "warmup.threshold_paused")  # 2 of the last 3: above 50 %
    assert event.data["inbox_id"] == a and "bounce rate 67%" in event.data["reason"]
    # Not campaign bounces: no email events, no suppression, no receipts.
    assert await pool.count(Event, Event.type.like("email.%")) == 0
    assert await pool.count(Suppression) == 0 and await pool.count(InboundReceipt) == 0
    [today] = await pool.rows(WarmupDaily, WarmupDaily.inbox_id == a)
    assert today.bounced == 2
