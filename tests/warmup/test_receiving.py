"""The receiving side, in the IMAP reader: warmup mail found in Junk is moved to INBOX and counted as a spam
placement on the sender's side, marked read and important, and answered in thread at about the reply rate —
sent and read in each security mode."""

from __future__ import annotations

from email import message_from_bytes
from email.utils import parseaddr

from sqlalchemy import or_

from imail.models import Event, InboundReceipt, Reply
from imail.models.analytics import AnalyticsDaily
from imail.models.warmup import WarmupDaily, WarmupMessage
from imail.warmup.content import should_reply
from tests.fixtures.security import each_security, encrypted
from tests.warmup.conftest import Pool

VOLUME = 30


@each_security
async def test_warmup_mail_in_junk_is_moved_to_inbox_counted_as_spam_and_answered_in_thread(
    pool: Pool, security
):
    pool.settings.warmup_spam_threshold = 1.0  # this test is about placement, not auto-pause
    a = await pool.inbox({"start_volume": VOLUME, "ceiling": VOLUME, "reply_rate": 0.5})
    b = await pool.inbox({"start_volume": VOLUME, "ceiling": VOLUME, "reply_rate": 0})
    assert {((await pool.get(i))["smtp_security"], (await pool.get(i))["imap_security"]) for i in (a, b)} == {
        (security, security)
    }
    pool.router.junk.add(pool.email(b))  # B's provider files everything into Junk

    pool.clock.at(0, 18)
    await pool.send()
    from_a = [m for _, m in pool.router.warmup(pool.email(a))]
    assert len(from_a) == VOLUME and len(pool.folder(b, "Junk")) == VOLUME

    await pool.read()

    # B: nothing left in Junk; every warmup email of A's now in INBOX, read and important.
    assert pool.folder(b, "Junk") == []
    in_inbox = [
        (flags, raw)
        for flags, raw in pool.folder(b, "INBOX")
        if message_from_bytes(raw)["From"].endswith(f"<{pool.email(a)}>")
    ]
    assert len(in_inbox) == VOLUME
    assert all(b"\\Seen" in flags and b"\\Flagged" in flags for flags, _ in in_inbox)

    # A's side records each placement once: spam, even though B's reader met the moved copies again in INBOX.
    sent_by_a = await pool.rows(WarmupMessage, WarmupMessage.inbox_id == a, WarmupMessage.kind == "first")
    assert len(sent_by_a) == VOLUME and {m.placement for m in sent_by_a} == {"spam"}
    [today_a] = await pool.rows(WarmupDaily, WarmupDaily.inbox_id == a)
    assert (today_a.sent, today_a.spam, today_a.inbox) == (VOLUME, VOLUME, 0)
    # B's mail to A landed in A's INBOX: inbox placements on B's side, and B's reply_rate 0 means no answers.
    [today_b] = await pool.rows(WarmupDaily, WarmupDaily.inbox_id == b)
    assert (today_b.sent, today_b.inbox, today_b.spam) == (VOLUME, VOLUME, 0)

    # B answers about half of A's emails (A's reply_rate), after the reply delay, in thread.
    expected = {m.message_id_header for m in sent_by_a if should_reply(m.message_id_header, 0.5)}
    assert (
        0.2 * VOLUME <= len(expected) <= 0.8 * VOLUME
    )  # binomial(30, ½) leaves 6–24 about 3 times in 10,000
    pool.clock.advance(minutes=11)
    await pool.send()
    replies = [m.message for _, m in pool.router.warmup(pool.email(b)) if m.message["In-Reply-To"]]
    assert {r["In-Reply-To"] for r in replies} == expected and len(replies) == len(expected)
    subjects = {m.message_id_header: m.subject for m in sent_by_a}
    for reply in replies:
        assert reply["References"] == reply["In-Reply-To"]
        assert reply["Subject"] == "Re: " + subjects[reply["In-Reply-To"]]
        assert parseaddr(reply["To"])[1] == pool.email(a) and reply["X-Imail-Warmup"]

    await pool.read()  # A reads B's replies (in its INBOX)
    [today_a] = await pool.rows(WarmupDaily, WarmupDaily.inbox_id == a)
    assert today_a.replies_received == len(expected)
    assert {
        m.message_id_header for m in await pool.rows(WarmupMessage, WarmupMessage.replied.is_(True))
    } == expected
    shown = (await pool.get(a))["warmup"]
    assert shown["placement_7d"] == {"inbox": 0, "spam": VOLUME, "rate": 0.0}
    # health_score's placement part now has data: 0 for A (all spam), 100 for B (all inbox); the rest neutral
    # (70).
    assert (await pool.get(a))["health_score"] == 46  # 0.40·70 + 0.35·0 + 0.25·70 = 45.5
    assert (await pool.get(b))["health_score"] == 81  # 0.40·70 + 0.35·100 + 0.25·70 = 80.5
    assert (await pool.get(b))["warmup"]["today"]["replies_sent"] == len(expected)

    # Sent, read and filed over sessions encrypted as the mode says.
    for inbox_id in (a, b):
        box = pool.mailboxes[inbox_id]
        assert (
            set(box.smtp.logins_over_tls(box.email))
            == set(box.imap.logins_over_tls(box.email))
            == {encrypted(security)}
        )
    assert {m.tls for _, m in pool.router.accepted} == {encrypted(security)}

    # None of it is campaign mail: no replies rows, no receipts, no email or reply events, no analytics.
    assert await pool.count(Reply) == 0 and await pool.count(InboundReceipt) == 0
    assert await pool.count(Event, or_(Event.type.like("email.%"), Event.type.like("reply.%"))) == 0
    assert await pool.count(AnalyticsDaily) == 0


async def test_the_pool_spans_workspaces_and_each_sees_only_its_own_side(
    pool: Pool, workspace, other_workspace
):
    pool_workspace = workspace.workspace_id
    a = await pool.inbox({"start_volume": 3, "ceiling": 3, "reply_rate": 0})
    mine = pool.headers
    pool.headers = other_workspace.headers()  # the next inbox belongs to another workspace of the deployment
    c = await pool.inbox({"start_volume": 3, "ceiling": 3, "reply_rate": 0})
    pool.headers = mine

    pool.clock.at(0, 18)
    await pool.send()
    await pool.read()
    assert [m.envelope_to for _, m in pool.router.warmup(pool.email(a))] == [[pool.email(c)]] * 3
    assert [m.envelope_to for _, m in pool.router.warmup(pool.email(c))] == [[pool.email(a)]] * 3
    # Each sender's record is in its own workspace, with the placement the other workspace's reader found.
    for inbox_id, workspace_id in ((a, pool_workspace), (c, other_workspace.workspace_id)):
        rows = await pool.rows(WarmupMessage, WarmupMessage.inbox_id == inbox_id)
        assert len(rows) == 3 and {(r.placement, r.workspace_id) for r in rows} == {("inbox", workspace_id)}
    assert (await pool.get(a))["warmup"]["placement_7d"] == {"inbox": 3, "spam": 0, "rate": 1.0}
    theirs = await pool.client.get(f"/v1/inboxes/{c}", headers=pool.headers)
    assert theirs.status_code == 404  # the pool is shared; the inboxes are not
