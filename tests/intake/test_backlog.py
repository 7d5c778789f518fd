"""A backlog in one inbox does not hold the other inboxes back: against a real Dovecot, one inbox holding more
mail than one pass reads and another inbox with a reply, read by the worker function."""

from __future__ import annotations

from imail.models import Reply
from imail.workers.imap_reader import read_inboxes
from tests.fixtures.inbound import reply
from tests.intake.conftest import Mailroom, cursors, events, replies


async def test_a_reply_to_another_inbox_is_read_while_a_backlog_is_drained(make_mailroom):
    rooms: list[Mailroom] = [await make_mailroom(leads=12), await make_mailroom(leads=1)]
    # Claims are ordered by inbox id among inboxes never read: the backlog goes to the one claimed first.
    rooms.sort(key=lambda room: room.outreach.inbox_id)
    backlog, other = rooms
    for lead in backlog.outreach.leads:
        backlog.deliver(reply(lead.header, from_email=lead.email, to_email=backlog.inbox_email))
    [lead] = other.outreach.leads
    other.deliver(reply(lead.header, from_email=lead.email, to_email=other.inbox_email))
    # One inbox per claim stands for the 20 claimed of a thousand: the other inbox is not in the first claim.
    ctx = backlog.context(
        inbound_batch_inboxes=1, inbound_max_messages=4, inbound_fetch_batch=1, inbound_idle=False
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
