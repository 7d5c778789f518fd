"""Issue 26, item 2: `email.delivered` for real. The lab's Postfix offers DSN (RFC 3461): imail asks for
reports (`RET=HDRS ENVID=<email id>`, `NOTIFY=SUCCESS,FAILURE,DELAY`); Postfix files them in the sender's
mailbox (Dovecot, over LMTP); the inbox reader reads them over IMAP: success → `email.delivered`, failure → a
hard bounce."""

from __future__ import annotations

import pytest

from imail.models.sending import Message
from imail.workers.imap_reader import inbound_pool, read_inboxes
from tests.fixtures.postfix import MailLab
from tests.lab.conftest import LabMailbox
from tests.lab.test_mta_answers import remote_address, start
from tests.sending.conftest import Clock, Outreach, clock, freeze_api_clock, outreach  # noqa: F401


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):  # noqa: F811
    freeze_api_clock(monkeypatch, clock)


async def read_reports(outreach: Outreach, lab: MailLab, mailbox: LabMailbox, count: int) -> None:  # noqa: F811
    """Wait for Postfix to file `count` reports in the sender's INBOX, then let the inbox reader read them."""
    lab.wait_for_mailbox(mailbox.email, count)
    try:
        await read_inboxes(outreach.ctx)
    finally:
        await inbound_pool(outreach.ctx).close()


async def test_the_success_report_fires_email_delivered(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
):
    lead = remote_address()
    await start(outreach, lab_mailbox, lead)
    await outreach.drain()
    [message] = await outreach.rows(Message)
    assert message.status == "sent"
    mail_lab.wait_for_sink_to(lead)
    await read_reports(outreach, mail_lab, lab_mailbox, 1)
    # A success report comes only when NOTIFY=SUCCESS was asked; it names the email (ENVID) and quotes its
    # headers.
    [report] = mail_lab.dovecot.fetch_all(lab_mailbox.email)
    assert f"Original-Envelope-Id: {message.id}".encode() in report
    assert b"text/rfc822-headers" in report and message.message_id_header.encode() in report
    [delivered] = await outreach.events("email.delivered")
    assert delivered.data["message_id"] == message.id and delivered.data["email"] == lead
    assert await outreach.events("email.bounced.hard") == []


async def test_a_failure_report_is_a_hard_bounce(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
):
    lead = remote_address("gone-later")
    mail_lab.sink.refuse_recipient(lead)  # Postfix takes it, the next hop refuses it: a report comes back
    await start(outreach, lab_mailbox, lead)
    await outreach.drain()
    [message] = await outreach.rows(Message)
    assert message.status == "sent"
    await read_reports(outreach, mail_lab, lab_mailbox, 1)
    [bounce] = await outreach.events("email.bounced.hard")
    assert bounce.data["message_id"] == message.id and bounce.data["status_code"] == "5.1.1"
    assert await outreach.events("email.delivered") == []
    [message] = await outreach.rows(Message)
    assert message.status == "bounced"
