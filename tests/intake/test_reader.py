"""The IMAP reader against a real Dovecot: replies, bounces and auto-replies placed with IMAP APPEND, read by
the worker function with a WorkerContext, and what that did to leads, sequences, suppressions and the event
log."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from imail.intake.repository import ReaderQueue
from imail.models import InboundReceipt, Inbox, Lead, Message, SequenceState
from imail.sending import service as sending
from imail.workers.imap_reader import inbound_pool, read_inboxes
from imail.workers.registry import WORKERS
from imail.workers.repository import HeartbeatRepository
from tests.fixtures.inbound import FIRST_SUBJECT, dsn, make_outreach, newsletter, out_of_office, reply
from tests.fixtures.security import each_security, encrypted
from tests.intake.conftest import (
    Mailroom,
    count,
    cursors,
    events,
    poll,
    replies,
    row,
    snapshot,
    suppressions,
)


def test_the_reader_is_a_registered_worker():
    assert any(spec.run is read_inboxes for spec in WORKERS)


async def due_jobs(room: Mailroom, days: float) -> list:
    """What the sending engine would send `days` from now (its own claim, in a transaction rolled back)."""
    async with room.database.sessions() as session:
        claim = await sending.claim(session, room.settings, "probe", now=room.now + timedelta(days=days))
        await session.rollback()
    return claim.jobs


async def test_a_reply_to_step_1_stops_step_2_then_fires_received_and_classified(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    room.reply_from(lead)

    assert await room.read(room.context()) == 1

    received, classified = await events(room.database, "reply.received", "reply.classified")
    assert (received.type, classified.type) == ("reply.received", "reply.classified")  # in this order
    [stored] = await replies(room.database)
    assert received.data["reply_id"] == classified.data["reply_id"] == stored.id
    assert received.data["message_id"] == lead.message_id and received.data["lead_id"] == lead.lead_id
    assert received.data["from_email"] == lead.email and received.data["inbox_id"] == room.outreach.inbox_id
    assert classified.data["label"] == "interested" and 0.5 < classified.data["confidence"] <= 1
    assert stored.direction == "inbound" and stored.auto_reply is False and stored.folder == "INBOX"
    assert stored.reply_text.startswith("Sounds interesting") and "wrote:" not in stored.reply_text

    stored_lead = await row(room.database, Lead, lead.lead_id)
    assert (stored_lead.status, stored_lead.interest_status) == ("replied", "interested")
    state = await row(room.database, SequenceState, lead.lead_id)
    assert (state.status, state.stop_reason, state.due_at) == ("stopped", "replied", None)
    assert await due_jobs(room, days=3) == []  # step 2 never goes out


async def test_without_stop_on_reply_step_2_still_goes_out(make_mailroom):
    room: Mailroom = await make_mailroom(stop_on_reply=False)
    lead = room.outreach.leads[0]
    room.reply_from(lead)
    await room.read(room.context())

    assert len(await events(room.database, "reply.received")) == 1
    state = await row(room.database, SequenceState, lead.lead_id)
    assert state.status == "scheduled" and state.due_at is not None
    [job] = await due_jobs(room, days=3)
    assert job.to_email == lead.email


async def test_a_5_1_1_report_suppresses_the_address(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    room.deliver(dsn(lead.header, recipient=lead.email, to_email=room.inbox_email, status="5.1.1"))
    await room.read(room.context())

    [bounced] = await events(room.database, "email.bounced.hard")
    assert bounced.data["message_id"] == lead.message_id and bounced.data["status_code"] == "5.1.1"
    assert "User unknown" in bounced.data["diagnostic"]
    [entry] = await suppressions(room.database)
    assert (entry.value, entry.reason) == (lead.email, "bounced")
    assert (await row(room.database, Lead, lead.lead_id)).status == "bounced"
    assert (await row(room.database, Message, lead.message_id)).status == "bounced"
    state = await row(room.database, SequenceState, lead.lead_id)
    assert (state.status, state.stop_reason) == ("stopped", "bounced")
    assert await events(room.database, "reply.received", "email.bounced.soft") == []
    assert await replies(room.database) == []  # a bounce is not a reply


async def test_a_4_2_2_report_is_a_soft_bounce_and_the_email_is_sent_again(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    room.deliver(dsn(lead.header, recipient=lead.email, to_email=room.inbox_email, status="4.2.2"))
    await room.read(room.context())

    [soft] = await events(room.database, "email.bounced.soft")
    assert soft.data["category"] == "mailbox_full" and soft.data["status_code"] == "4.2.2"
    assert soft.data["will_retry"] is True and soft.data["message_id"] == lead.message_id
    assert await suppressions(room.database) == [] and await events(room.database, "email.bounced.hard") == []
    assert (await row(room.database, Message, lead.message_id)).status == "retry"
    state = await row(room.database, SequenceState, lead.lead_id)
    delay = timedelta(seconds=room.settings.inbound_soft_bounce_retry_seconds)
    assert (state.status, state.next_step) == ("scheduled", 0)
    assert state.due_at == state.scheduled_at == room.now + delay

    assert await due_jobs(room, days=0) == []  # not before the delay
    [job] = await due_jobs(room, days=delay.total_seconds() / 86400 + 0.01)
    assert job.message_id == lead.message_id and job.to_email == lead.email  # step 1 again, same email row


async def test_soft_bounces_stop_being_retried_at_the_limit(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    ctx = room.context(inbound_soft_bounce_retries=1)
    room.deliver(dsn(lead.header, recipient=lead.email, to_email=room.inbox_email, status="4.2.2"))
    await room.read(ctx)
    async with (
        room.database.transaction() as session
    ):  # the resend went out (as the sending engine records it)
        message = await session.get(Message, lead.message_id)
        message.status = "sent"
        state = await session.get(SequenceState, lead.lead_id)
        state.next_step, state.status = 1, "scheduled"
    room.deliver(dsn(lead.header, recipient=lead.email, to_email=room.inbox_email, status="4.7.1"))
    room.later(room.settings.inbound_idle_recheck + 1)
    await room.read(ctx)

    first, second = await events(room.database, "email.bounced.soft")
    assert (first.data["will_retry"], second.data["will_retry"]) == (True, False)
    assert second.data["category"] == "greylisted"
    assert (await row(room.database, Message, lead.message_id)).status == "sent"
    assert (await row(room.database, SequenceState, lead.lead_id)).next_step == 1


async def test_two_soft_bounces_of_one_email_in_one_batch_count_twice(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    for status in ("4.2.2", "4.7.1"):
        room.deliver(dsn(lead.header, recipient=lead.email, to_email=room.inbox_email, status=status))
    await room.read(room.context(inbound_soft_bounce_retries=1))
    first, second = await events(room.database, "email.bounced.soft")
    assert (first.data["will_retry"], second.data["will_retry"]) == (True, False)
    assert (await row(room.database, Message, lead.message_id)).status == "retry"  # one resend, not two


async def test_one_batch_of_bounces_and_unsubscribe_requests_suppresses_every_address_once(
    make_mailroom, database
):
    room: Mailroom = await make_mailroom(leads=4)
    bounced, unsubscribed, soft, replied = room.outreach.leads
    elsewhere = await make_outreach(database, room.settings, room.outreach.workspace_id, leads=1)
    async with database.transaction() as session:  # the bounced address is also a lead of another campaign
        (await session.get(Lead, elsewhere.leads[0].lead_id)).email = bounced.email
    room.deliver(dsn(bounced.header, recipient=bounced.email, to_email=room.inbox_email, status="5.1.1"))
    room.reply_from(unsubscribed, text="Please remove me from your list.")
    room.deliver(dsn(soft.header, recipient=soft.email, to_email=room.inbox_email, status="4.2.2"))
    room.reply_from(replied)
    room.deliver(
        dsn(
            bounced.header,
            recipient=bounced.email,
            to_email=room.inbox_email,
            status="5.1.1",
            message_id="<second-report@mx.example.org>",
        )
    )  # a second report of the same bounce
    assert await room.read(room.context()) == 5

    assert {(e.value, e.reason) for e in await suppressions(room.database)} == {
        (bounced.email, "bounced"),
        (unsubscribed.email, "unsubscribed"),
    }
    statuses = [(await row(room.database, Lead, lead.lead_id)).status for lead in room.outreach.leads]
    assert statuses == ["bounced", "unsubscribed", "active", "replied"]
    assert (await row(room.database, Lead, elsewhere.leads[0].lead_id)).status == "suppressed"
    assert len(await events(room.database, "email.bounced.hard")) == 1
    [soft_event] = await events(room.database, "email.bounced.soft")
    assert soft_event.data["will_retry"] is True
    assert (await row(room.database, Message, soft.message_id)).status == "retry"


async def test_an_out_of_office_is_not_a_reply_and_moves_the_next_step_past_its_return(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    back_on = (room.now + timedelta(days=10)).date()
    room.deliver(
        out_of_office(lead.header, from_email=lead.email, to_email=room.inbox_email, back_on=back_on)
    )
    await room.read(room.context())

    assert await events(room.database, "reply.received", "reply.classified") == []
    [stored] = await replies(room.database)
    assert stored.auto_reply is True and stored.out_of_office is True and stored.return_date == back_on
    [counted] = await events(
        room.database, "email.auto_replied"
    )  # for analytics only (never sent to webhooks)
    assert (counted.data["reply_id"], counted.data["message_id"]) == (stored.id, lead.message_id)
    stored_lead = await row(room.database, Lead, lead.lead_id)
    assert (stored_lead.status, stored_lead.interest_status) == ("active", "out_of_office")
    state = await row(room.database, SequenceState, lead.lead_id)
    assert state.status == "scheduled" and state.stop_reason is None  # the sequence goes on …
    assert (
        state.scheduled_at.date() == back_on + timedelta(days=1) == state.due_at.date()
    )  # … after the return
    assert await due_jobs(room, days=3) == []
    assert len(await due_jobs(room, days=12)) == 1


async def test_messages_from_unknown_threads_change_nothing(make_mailroom, other_workspace):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    elsewhere = await make_outreach(room.database, room.settings, other_workspace.workspace_id)
    before = await snapshot(room.database)
    to = room.inbox_email
    room.deliver(newsletter(to))
    room.deliver(reply("<unknown@prospect.test>", from_email="someone@else.test", to_email=to))
    room.deliver(reply(None, from_email=lead.email, to_email=to, subject="Re: A different topic"))
    room.deliver(reply(None, from_email="stranger@else.test", to_email=to))  # our subject, not our recipient
    # Another workspace's email, quoted in a reply to this workspace's inbox: never matched across tenants.
    room.deliver(reply(elsewhere.leads[0].header, from_email=elsewhere.leads[0].email, to_email=to))
    room.deliver(dsn("<nobody@acme.test>", recipient="nobody@else.test", to_email=to))

    assert await room.read(room.context()) == 6
    assert await snapshot(room.database) == before
    assert (await cursors(room.database, room.outreach.inbox_id))["INBOX"].last_uid == 6  # read, not stuck


async def test_without_threading_headers_the_sender_and_subject_thread_match(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    room.deliver(
        reply(
            None,
            from_email=lead.email,
            to_email=room.inbox_email,
            subject=f"AW: Re: {FIRST_SUBJECT}",
            text="Please remove me from your list.",
        )
    )
    await room.read(room.context())

    [classified] = await events(room.database, "reply.classified")
    assert classified.data["label"] == "unsubscribe_request" and classified.data["lead_id"] == lead.lead_id
    stored_lead = await row(room.database, Lead, lead.lead_id)
    assert (stored_lead.status, stored_lead.interest_status) == ("unsubscribed", "unsubscribed")
    [entry] = await suppressions(room.database)
    assert (entry.value, entry.reason) == (lead.email, "unsubscribed")


async def test_restarting_the_reader_rereads_nothing_and_misses_nothing(make_mailroom):
    room: Mailroom = await make_mailroom(leads=3)
    first, second, third = room.outreach.leads
    room.reply_from(first)
    room.deliver(dsn(second.header, recipient=second.email, to_email=room.inbox_email, status="5.1.1"))
    assert await room.read(room.context()) == 2

    room.deliver(
        reply(third.header, from_email=third.email, to_email=room.inbox_email, text="Not interested, thanks.")
    )
    room.later(room.settings.inbound_idle_recheck + 1)
    restarted = room.context()  # a new worker: no connections, no memory, only the database
    assert await room.read(restarted) == 1
    room.later(room.settings.inbound_idle_recheck + 1)
    assert await room.read(room.context()) == 0

    kinds = [e.type for e in await events(room.database)]
    assert kinds.count("reply.received") == 2 and kinds.count("reply.classified") == 2
    assert kinds.count("email.bounced.hard") == 1 and len(await replies(room.database)) == 2
    assert await count(room.database, InboundReceipt) == 3
    labels = {e.data["lead_id"]: e.data["label"] for e in await events(room.database, "reply.classified")}
    assert labels == {first.lead_id: "interested", third.lead_id: "not_interested"}
    assert inbound_pool(restarted).opened == 1


async def test_a_uidvalidity_change_rereads_by_date_without_acting_twice(make_mailroom):
    room: Mailroom = await make_mailroom(leads=2)
    first, second = room.outreach.leads
    spam_reply = reply(first.header, from_email=first.email, to_email=room.inbox_email)
    room.deliver(spam_reply, "Junk")
    ctx = room.context()
    assert await room.read(ctx) == 1
    [stored] = await replies(room.database)
    assert stored.folder == "Junk"
    before = (await cursors(room.database, room.outreach.inbox_id))["Junk"]

    client = room.imap()  # the folder is recreated: new UIDVALIDITY, UIDs start again at 1
    try:
        assert client.delete("Junk")[0] == "OK"
    finally:
        client.logout()
    room.deliver(spam_reply, "Junk")  # the same message again (same Message-ID)
    room.deliver(
        dsn(second.header, recipient=second.email, to_email=room.inbox_email, status="5.1.1"), "Junk"
    )
    room.later(room.settings.inbound_idle_recheck + 1)
    assert await room.read(ctx) == 2

    after = (await cursors(room.database, room.outreach.inbox_id))["Junk"]
    assert after.uidvalidity != before.uidvalidity and after.last_uid == 2
    assert len(await events(room.database, "reply.received")) == 1  # not acted on twice …
    assert len(await events(room.database, "email.bounced.hard")) == 1  # … and the new one not missed


async def test_the_same_message_in_inbox_and_spam_is_acted_on_once(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    message = reply(lead.header, from_email=lead.email, to_email=room.inbox_email)
    room.deliver(message)
    room.deliver(message, "Junk")
    assert await room.read(room.context()) == 2
    assert len(await events(room.database, "reply.received")) == 1 and len(await replies(room.database)) == 1


@each_security
async def test_idle_announces_new_mail_and_the_connection_is_reused(make_mailroom, security):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    ctx = room.context()
    assert await room.read(ctx) == 0
    pool = inbound_pool(ctx)
    assert (await poll(room.database, room.outreach.inbox_id)).idle is True

    room.reply_from(lead)
    deadline = time.monotonic() + 30  # bounded wait for the push; a loaded machine delays it, nothing else
    while room.outreach.inbox_id not in pool.pushed and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert room.outreach.inbox_id in pool.pushed  # Dovecot told the IDLE-ing connection
    assert await room.read(ctx) == 1  # read at once, though not due by the schedule
    assert len(await events(room.database, "reply.received")) == 1
    assert pool.opened == 1
    assert room.server.logins_over_tls(room.inbox_email) == [encrypted(security)]


async def test_without_idle_the_inbox_is_polled_on_its_interval(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    ctx = room.context(inbound_idle=False)
    assert await room.read(ctx) == 0
    state = await poll(room.database, room.outreach.inbox_id)
    assert state.idle is False and state.next_poll_at == room.now + timedelta(
        seconds=ctx.settings.inbound_poll_interval
    )

    room.reply_from(lead)
    assert await room.read(ctx) == 0  # not due yet
    room.later(ctx.settings.inbound_poll_interval)
    assert await room.read(ctx) == 1
    assert inbound_pool(ctx).opened == 1  # the same connection, reused


async def _beat(room: Mailroom, *contexts) -> None:
    async with room.database.transaction() as session:
        for ctx in contexts:
            await HeartbeatRepository(session).beat(ctx.instance_id, "test", 1, room.now)


async def test_a_dead_workers_inboxes_are_taken_over_by_heartbeat_not_by_their_schedule(make_mailroom):
    """A SIGKILLed worker leaves its inboxes IDLE-ing (next read 20 minutes away) or leased: a live worker
    takes them once the dead one has missed `worker_dead_seconds` of heartbeats, not at their schedule."""
    idling, leased = await make_mailroom(), await make_mailroom()
    first, second = idling.context(), idling.context()
    await _beat(idling, first, second)
    assert await idling.read(first) == 0
    assert {(await poll(idling.database, r.outreach.inbox_id)).idle for r in (idling, leased)} == {True}
    # `first` dies in the middle of reading `leased`: its lease has most of its time left.
    async with idling.database.transaction() as session:
        queue = ReaderQueue(session)
        lease_until = idling.now + timedelta(seconds=first.settings.inbound_lease_seconds)
        dead_after = timedelta(seconds=first.settings.worker_dead_seconds)
        assert await queue.claim(
            [leased.outreach.inbox_id], idling.now, lease_until, first.instance_id, dead_after
        )
    for room in (idling, leased):
        lead = room.outreach.leads[0]
        room.reply_from(lead)

    # While `first` beats, its inboxes stay its own.
    idling.later(first.settings.worker_dead_seconds)
    await _beat(idling, first, second)
    assert await read_inboxes(second) == 0
    # Then it stops beating: `second` reads both at once.
    idling.later(first.settings.worker_dead_seconds + 1)
    await _beat(idling, second)
    assert await idling.read(second) == 2
    for room in (idling, leased):
        assert (await poll(room.database, room.outreach.inbox_id)).worker_id == second.instance_id
    assert len(await events(idling.database, "reply.received")) == 2
    # And they are `second`'s now: not taken again, not read twice.
    assert await idling.read(second) == 0


async def test_a_full_claim_runs_the_next_iteration_at_once(make_mailroom):
    """Many inboxes due together (a start, a dead worker's inboxes): the loop goes on while claims come back
    full, rather than waiting its interval after each batch with no new mail in it."""
    rooms = [await make_mailroom() for _ in range(3)]
    ctx = rooms[0].context(inbound_batch_inboxes=2)
    assert await read_inboxes(ctx) == 1  # two inboxes, nothing new, and the claim was full
    assert await read_inboxes(ctx) == 0  # the third, and no more


async def test_a_large_backlog_is_read_in_bounded_batches(make_mailroom):
    room: Mailroom = await make_mailroom(leads=5)
    for lead in room.outreach.leads:
        room.reply_from(lead)
    ctx = room.context(inbound_max_messages=2, inbound_fetch_batch=1, inbound_pass_seconds=0)
    assert await read_inboxes(ctx) == 2 + 1  # two read, and more waiting: run again at once
    assert len(await replies(room.database)) == 2
    assert await read_inboxes(ctx) == 2 + 1
    assert await read_inboxes(ctx) == 1  # the last one; nothing waits now
    assert await read_inboxes(ctx) == 0
    assert len(await events(room.database, "reply.received")) == 5


async def test_connections_per_worker_are_bounded(make_mailroom, database):
    rooms = [await make_mailroom() for _ in range(3)]
    ctx = rooms[0].context(inbound_max_connections=2)
    assert await rooms[0].read(ctx) == 0
    pool = inbound_pool(ctx)
    assert pool.opened == 3 and len(pool.connections) == 2
    # The inbox whose IDLE connection made room is read by the polling interval again.
    polls = [await poll(database, room.outreach.inbox_id) for room in rooms]
    assert sorted(p.idle for p in polls) == [False, True, True]
    [evicted] = [p for p in polls if not p.idle]
    assert evicted.inbox_id not in pool.connections
    assert evicted.next_poll_at == rooms[0].now + timedelta(seconds=ctx.settings.inbound_poll_interval)


async def test_inboxes_beyond_the_connection_limit_are_all_read(make_mailroom, database):
    """Closing an IDLE connection to make room is not new mail: the inbox it served waits for its polling
    turn, so inboxes never read yet are not starved by evicted ones read (and evicting others) again at
    once."""
    rooms = [await make_mailroom() for _ in range(6)]
    ctx = rooms[0].context(inbound_max_connections=2, inbound_batch_inboxes=2)
    for _ in range(3):
        await rooms[0].read(ctx)
        assert inbound_pool(ctx).pushed == set()
    polls = [await poll(database, room.outreach.inbox_id) for room in rooms]
    assert all(p is not None and p.polled_at is not None for p in polls)
    assert len(inbound_pool(ctx).connections) == 2


async def test_connections_of_inboxes_no_longer_read_are_closed(make_mailroom, database):
    room: Mailroom = await make_mailroom()
    ctx = room.context()
    await room.read(ctx)
    pool = inbound_pool(ctx)
    assert list(pool.connections) == [room.outreach.inbox_id]
    async with database.transaction() as session:
        (await session.get(Inbox, room.outreach.inbox_id)).status = "disconnected"
    pool.last_pruned = 0.0  # due for its ownership check
    assert await read_inboxes(ctx) == 0
    assert pool.connections == {}


async def test_a_failed_login_is_reported_to_the_connection_monitor(make_mailroom):
    room: Mailroom = await make_mailroom(add_user=False)
    assert await room.read(room.context()) == 0
    inbox = await row(room.database, Inbox, room.outreach.inbox_id)
    assert inbox.last_error_side == "imap" and "AUTHENTICATIONFAILED" in inbox.last_error
    assert (
        inbox.last_checked_at is None
    )  # the monitor checks it at once and marks it disconnected if it fails
    state = await poll(room.database, room.outreach.inbox_id)
    assert state.lease_until is None and "login" in state.last_error
    assert await cursors(room.database, room.outreach.inbox_id) == {}


async def test_test_mode_and_disconnected_inboxes_are_never_read(make_mailroom, database):
    test_mode: Mailroom = await make_mailroom(livemode=False)
    lead = test_mode.outreach.leads[0]
    test_mode.reply_from(lead)
    live: Mailroom = await make_mailroom()
    async with database.transaction() as session:
        (await session.get(Inbox, live.outreach.inbox_id)).status = "disconnected"
    assert await read_inboxes(test_mode.context()) == 0
    assert await poll(database, test_mode.outreach.inbox_id) is None
    assert await poll(database, live.outreach.inbox_id) is None
    assert await replies(database) == []


async def test_a_reply_arriving_while_another_worker_holds_the_lease_waits(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    room.reply_from(lead)
    now = room.now
    dead_after = timedelta(seconds=room.settings.worker_dead_seconds)
    async with room.database.transaction() as session:
        assert await ReaderQueue(session).claim(
            [room.outreach.inbox_id], now, now + timedelta(minutes=5), "other", dead_after
        )
    assert await read_inboxes(room.context()) == 0  # leased to "other"
    room.later(6 * 60)
    async with room.database.transaction() as session:  # "other" still beats, but its lease ran out
        await HeartbeatRepository(session).beat("other", "test", 1, room.now)
    assert await room.read(room.context()) == 1
    assert len(await events(room.database, "reply.received")) == 1


async def test_a_vanished_spam_folder_does_not_stop_inbox_from_being_read(make_mailroom):
    room: Mailroom = await make_mailroom()
    lead = room.outreach.leads[0]
    room.deliver(newsletter(room.inbox_email), "Junk")
    ctx = room.context()
    assert await room.read(ctx) == 1
    client = room.imap()
    try:
        assert client.delete("Junk")[0] == "OK"
    finally:
        client.logout()
    room.reply_from(lead)
    room.later(room.settings.inbound_idle_recheck + 1)
    assert await room.read(ctx) == 1
    assert len(await events(room.database, "reply.received")) == 1
    assert (await poll(room.database, room.outreach.inbox_id)).last_error is None
