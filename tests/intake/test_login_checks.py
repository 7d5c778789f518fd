"""The scheduled login check and the IMAP reader together, against real servers: while the reader reads an
inbox without error (lately, or keeps it IDLE-ing), the check logs in to SMTP alone; a read that fails makes
the inbox due a full check at once, and a reader that has not read the inbox within the check's interval
vouches for nothing."""

from __future__ import annotations

import pytest

from imail.inboxes.monitor import check_due_inboxes
from imail.models import Inbox
from tests.fixtures.inbound import unique
from tests.fixtures.smtp import SmtpServer, make_smtp_server  # noqa: F401
from tests.intake.conftest import Mailroom, events, poll, row


@pytest.fixture
def smtp(make_smtp_server) -> SmtpServer:  # noqa: F811
    return make_smtp_server("none")


@pytest.fixture
async def room(make_mailroom, make_dovecot, smtp: SmtpServer) -> Mailroom:
    """An inbox on its own Dovecot and its own SMTP server (so that stopping either touches no other test)."""
    email = unique("sender", "acme.test")
    smtp.add_user(email, "smtp-secret")
    return await make_mailroom(make_dovecot(), inbox_email=email, smtp_port=smtp.port)


async def test_an_idle_inbox_is_checked_on_smtp_alone_until_a_read_fails(room: Mailroom):
    inbox_id = room.outreach.inbox_id
    reader = room.context()
    await room.read(reader)
    state = await poll(room.database, inbox_id)
    assert state.idle is True and state.last_error is None

    room.server.stop()
    # The check is due (never checked) and SMTP works; the IMAP server is down but the reader's IDLE session
    # vouches for it: connected, and no login was tried that would have said otherwise.
    room.later(room.settings.inbox_check_interval / 2)
    assert await check_due_inboxes(room.context(), room.now) == 1
    inbox = await row(room.database, Inbox, inbox_id)
    assert inbox.status == "connected" and inbox.last_error is None

    # The reader finds its connection gone and cannot log in again: it says so, and the next check (due at
    # once) logs in to both servers and disconnects the inbox on the IMAP side.
    room.now = state.next_poll_at
    assert await room.read(reader) == 0
    inbox = await row(room.database, Inbox, inbox_id)
    assert inbox.status == "connected" and inbox.read_failures == 1 and inbox.last_checked_at is None
    assert await check_due_inboxes(room.context(), room.now) == 1
    inbox = await row(room.database, Inbox, inbox_id)
    assert inbox.status == "disconnected" and inbox.last_error_side == "imap"
    assert "could not be reached" in inbox.last_error
    [event] = await events(room.database, "inbox.disconnected")
    assert event.data["side"] == "imap"


async def test_an_inbox_the_reader_vouches_for_is_still_disconnected_when_smtp_fails(
    room: Mailroom, smtp: SmtpServer
):
    inbox_id = room.outreach.inbox_id
    await room.read(room.context())
    assert (await poll(room.database, inbox_id)).idle is True
    smtp.stop()
    assert await check_due_inboxes(room.context(), room.now) == 1
    inbox = await row(room.database, Inbox, inbox_id)
    assert inbox.status == "disconnected" and inbox.last_error_side == "smtp"
    assert "could not be reached" in inbox.last_error
    [event] = await events(room.database, "inbox.disconnected")
    assert event.data["side"] == "smtp"


async def test_a_polled_inbox_vouches_only_within_the_checks_interval(room: Mailroom):
    inbox_id = room.outreach.inbox_id
    await room.read(room.context(inbound_idle=False))
    state = await poll(room.database, inbox_id)
    assert state.idle is False and state.polled_at == room.now
    room.server.stop()

    room.later(10)  # read 10 s ago: the IMAP side is vouched for
    assert await check_due_inboxes(room.context(), room.now) == 1
    assert (await row(room.database, Inbox, inbox_id)).status == "connected"

    # One interval later the read is older than the interval: the check logs in to IMAP itself.
    room.later(room.settings.inbox_check_interval + 1)
    assert await check_due_inboxes(room.context(), room.now) == 1
    inbox = await row(room.database, Inbox, inbox_id)
    assert inbox.status == "disconnected" and inbox.last_error_side == "imap"


async def test_a_read_that_failed_vouches_for_nothing(room: Mailroom):
    inbox_id = room.outreach.inbox_id
    room.server.stop()
    await room.read(room.context(inbound_idle=False))  # the read fails: counted, reported
    state = await poll(room.database, inbox_id)
    assert state.polled_at == room.now and state.last_error is not None
    assert await check_due_inboxes(room.context(), room.now) == 1
    inbox = await row(room.database, Inbox, inbox_id)
    assert inbox.status == "disconnected" and inbox.last_error_side == "imap"
