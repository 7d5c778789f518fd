"""A backlog in one inbox does not hold the other inboxes back: against a real Dovecot, one inbox holding more
mail than one pass reads and another inbox with a reply, read by the worker function. While the worker has a
read slot to spare, a backlog's pass goes on past its budget (up to `inbound_pass_seconds`) instead of
starting its read-ahead again every `inbound_max_messages`; with every slot taken it stops at the budget."""

from __future__ import annotations

import asyncio

from imail.models import Reply
from imail.workers.imap_reader import read_inboxes
from tests.intake.conftest import Mailroom, cursors, events, replies


async def test_a_reply_to_another_inbox_is_read_while_a_backlog_is_drained(make_mailroom):
    rooms: list[Mailroom] = [await make_mailroom(leads=12), await make_mailroom(leads=1)]
    # Claims are ordered by inbox id among inboxes never read: the backlog goes to the one claimed first.
    rooms.sort(key=lambda room: room.outreach.inbox_id)
    backlog, other = rooms
    for lead in backlog.outreach.leads:
        backlog.reply_from(lead)
    [lead] = other.outreach.leads
    other.reply_from(lead)
    # One inbox per claim stands for the 20 claimed of a thousand: the other inbox is not in the first claim.
    # Passes that stop at their budget (inbound_pass_seconds=0), so that the backlog takes three.
    ctx = backlog.context(
        inbound_batch_inboxes=1,
        inbound_max_messages=4,
        inbound_fetch_batch=1,
        inbound_idle=False,
        inbound_pass_seconds=0,
    )

    # The first iteration reads one pass of the backlog and, while it goes on, the other inbox: its reply is
    # recorded while the backlog still has two passes to go.
    # Messages read, plus the backlog's "more waiting", plus one for a full claim (each claim here is).
    assert await read_inboxes(ctx) == 4 + 1 + 1 + 1
    recorded = await replies(backlog.database)
    assert [r.inbox_id for r in recorded].count(other.outreach.inbox_id) == 1
    assert _count(recorded, backlog) == 4
    assert (await cursors(backlog.database, backlog.outreach.inbox_id))["INBOX"].last_uid < 12

    # The backlog is drained by the following passes, each message once.
    assert await read_inboxes(ctx) == 4 + 1 + 1
    assert await read_inboxes(ctx) == 4 + 1
    assert await read_inboxes(ctx) == 0
    assert _count(await replies(backlog.database), backlog) == 12
    assert len(await events(backlog.database, "reply.received")) == 13


def _count(recorded: list[Reply], room: Mailroom) -> int:
    return sum(1 for r in recorded if r.inbox_id == room.outreach.inbox_id)


async def backlog_of(make_mailroom, messages: int) -> Mailroom:
    room: Mailroom = await make_mailroom(leads=messages)
    for lead in room.outreach.leads:
        room.reply_from(lead)
    return room


async def test_a_pass_goes_on_past_its_budget_while_a_read_slot_is_free(make_mailroom):
    room = await backlog_of(make_mailroom, 5)
    ctx = room.context(inbound_max_messages=2, inbound_fetch_batch=1, inbound_idle=False)
    assert await read_inboxes(ctx) == 5  # every message in one pass, and nothing more waiting
    assert _count(await replies(room.database), room) == 5
    assert (await cursors(room.database, room.outreach.inbox_id))["INBOX"].last_uid == 5
    assert await read_inboxes(ctx) == 0


async def test_with_every_read_slot_taken_a_pass_stops_at_its_budget(make_mailroom):
    room = await backlog_of(make_mailroom, 5)
    ctx = room.context(
        inbound_max_messages=2, inbound_fetch_batch=1, inbound_idle=False, inbound_concurrency=1
    )
    assert await read_inboxes(ctx) == 2 + 1  # two read, and more waiting
    assert _count(await replies(room.database), room) == 2
    assert await room.read(ctx) == 3 + 1
    assert _count(await replies(room.database), room) == 5


async def test_a_pass_past_its_budget_ends_once_inbound_pass_seconds_have_gone_by(make_mailroom):
    room = await backlog_of(make_mailroom, 8)
    ctx = room.context(
        inbound_max_messages=2, inbound_fetch_batch=1, inbound_idle=False, inbound_pass_seconds=4
    )

    def ticking():  # every look at the clock finds it a second later
        room.later(1)
        return room.now

    ctx.clock = ticking
    first = await read_inboxes(ctx)
    read = _count(await replies(room.database), room)
    assert 2 <= read < 8 and first == read + 1  # past the budget, then stopped by the time: more waiting
    # How far each later pass gets depends on how often it looks at the clock (chunks that join a batch look
    # less): only that the rest is read, each message once.
    assert await room.read(ctx) >= 8 - read
    assert _count(await replies(room.database), room) == 8
    assert len(await events(room.database, "reply.received")) == 8


async def test_while_a_pass_goes_on_past_its_budget_the_inboxes_read_meanwhile_are_read_again(make_mailroom):
    """Reads that end while a backlog's pass goes on past its budget are settled at once: an inbox read
    meanwhile can be claimed again when IDLE announces its next reply, before the backlog's pass ends."""
    rooms: list[Mailroom] = [await make_mailroom(leads=80), await make_mailroom(leads=2)]
    rooms.sort(key=lambda room: len(room.outreach.leads), reverse=True)
    backlog, other = rooms
    # A first claim of one inbox takes the lower id among inboxes never read: the backlog's.
    assert backlog.outreach.inbox_id < other.outreach.inbox_id
    for lead in backlog.outreach.leads:
        backlog.reply_from(lead)
    first, second = other.outreach.leads
    other.reply_from(first)
    ctx = backlog.context(inbound_batch_inboxes=1, inbound_max_messages=4, inbound_fetch_batch=1)

    async def recorded(lead) -> bool:
        return any(r.lead_id == lead.lead_id for r in await replies(backlog.database))

    reading = asyncio.create_task(read_inboxes(ctx))
    try:
        for lead in (first, second):
            while not await recorded(lead):
                assert not reading.done(), "the backlog's pass ended before the other inbox's reply was read"
                await asyncio.sleep(0.02)
            if lead is first:  # read once, IDLE-ing: the next reply is announced
                other.reply_from(second)
    finally:
        await reading
    assert _count(await replies(backlog.database), backlog) == 80
    assert _count(await replies(backlog.database), other) == 2
