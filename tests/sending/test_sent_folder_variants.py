"""The Sent folder on IMAP servers that differ (issue 26, items 4 and 5), sent by the sending worker through
aiosmtpd, which files nothing (like most hosts): `auto` finds nothing in Sent after the first send and appends
to Gmail's `\\Sent` folder `[Gmail]/Sent Mail`, or, on a Courier or cPanel style `INBOX.` namespace without
special-use flags, to an `INBOX.Sent` it creates."""

from __future__ import annotations

import pytest

from tests.fixtures.imap_variants import VARIANTS, make_folders, variant_server  # noqa: F401
from tests.sending.conftest import freeze_api_clock
from tests.sending.test_sent_folder import send_one


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


@pytest.mark.parametrize("name", ["gmail", "inbox-prefix"])
async def test_what_auto_appends_lands_in_the_servers_sent_folder(
    outreach,
    make_mailbox,
    variant_server,  # noqa: F811
    name,
):
    mailbox = make_mailbox(imap=variant_server(name))
    make_folders(mailbox.imap, mailbox.email, name)
    inbox_id = await send_one(outreach, mailbox)

    view = (await outreach.client.get(f"/v1/inboxes/{inbox_id}", headers=outreach.headers)).json()
    assert view["sent_filed_by_provider"] is False
    [copy] = mailbox.imap.fetch_all(mailbox.email, VARIANTS[name].sent)
    [sent] = mailbox.smtp.messages
    assert sent.data.replace(b"\r\n", b"\n").endswith(copy.replace(b"\r\n", b"\n"))  # the bytes sent
