"""Issue 26, item 4: the Sent folder. Postfix with Dovecot (like most hosts but Gmail and Microsoft 365) does
not file SMTP submissions in Sent: imail learns that after the first send and APPENDs the exact bytes it sent
to the `\\Sent` folder; an inbox's `sent_folder_mode` overrides what was learned."""

from __future__ import annotations

import pytest

from imail.models.sending import Message
from tests.fixtures.postfix import MailLab
from tests.lab.conftest import LabMailbox
from tests.lab.test_mta_answers import inbox_view, remote_address, start
from tests.sending.conftest import Clock, Outreach, clock, freeze_api_clock, outreach  # noqa: F401


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):  # noqa: F811
    freeze_api_clock(monkeypatch, clock)


def unfolded(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


async def test_auto_learns_the_provider_does_not_file_and_appends_the_bytes_sent(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
):
    first, second = remote_address(), remote_address()
    inbox_id, _ = await start(outreach, lab_mailbox, first, second)
    await outreach.drain()
    messages = await outreach.rows(Message)
    assert sorted(m.status for m in messages) == ["sent", "sent"]
    assert (await inbox_view(outreach, inbox_id))["sent_filed_by_provider"] is False
    filed = mail_lab.dovecot.fetch_all(lab_mailbox.email, "Sent")
    assert len(filed) == 2
    # Exactly what went out: what the next hop got is the same message under Postfix's Received header.
    for to in (first, second):
        [relayed] = mail_lab.wait_for_sink_to(to)
        assert any(unfolded(relayed.data).endswith(unfolded(copy)) for copy in filed)


async def test_provider_mode_never_appends(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
):
    lead = remote_address()
    inbox_id = await outreach.connect_inbox(lab_mailbox, sent_folder_mode="provider")
    campaign = await outreach.campaign([{"subject": "Hi", "body": "<p>Hello.</p>"}])
    await outreach.lead(campaign["id"], lead)
    await outreach.resume(campaign["id"])
    await outreach.drain()
    mail_lab.wait_for_sink_to(lead)
    view = await inbox_view(outreach, inbox_id)
    assert (view["sent_folder_mode"], view["sent_filed_by_provider"]) == ("provider", None)
    assert mail_lab.dovecot.fetch_all(lab_mailbox.email, "Sent") == []
