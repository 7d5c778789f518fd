"""The Sent folder where the provider files SMTP submissions itself (as Gmail does: the `sink` fixture files
each accepted message in the sender's Dovecot Sent folder): `auto` learns that and appends nothing; `append`
always appends (issue 26, item 4; the other side, a provider that files nothing, is
tests/lab/test_sent_folder.py)."""

from __future__ import annotations

import pytest

from tests.inboxes.conftest import Mailbox
from tests.sending.conftest import freeze_api_clock

pytestmark = pytest.mark.usefixtures("sink")

STEP = {"subject": "Hi", "body": "<p>Hello.</p>"}


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


async def send_one(outreach, mailbox: Mailbox, **inbox_fields) -> str:
    inbox_id = await outreach.connect_inbox(mailbox, **inbox_fields)
    campaign = await outreach.campaign([STEP])
    await outreach.lead(campaign["id"], "ana@example.org")
    await outreach.resume(campaign["id"])
    await outreach.drain()
    return inbox_id


async def test_auto_learns_the_provider_files_and_appends_nothing(outreach, mailbox: Mailbox, dovecot):
    inbox_id = await send_one(outreach, mailbox)
    view = (await outreach.client.get(f"/v1/inboxes/{inbox_id}", headers=outreach.headers)).json()
    assert (view["sent_folder_mode"], view["sent_filed_by_provider"]) == ("auto", True)
    assert len(dovecot.fetch_all(mailbox.email, "Sent")) == 1  # the provider's copy only


async def test_append_mode_appends_even_where_the_provider_files(outreach, mailbox: Mailbox, dovecot):
    inbox_id = await send_one(outreach, mailbox, sent_folder_mode="append")
    copies = dovecot.fetch_all(mailbox.email, "Sent")
    assert len(copies) == 2 and copies[0].replace(b"\r\n", b"\n") == copies[1].replace(b"\r\n", b"\n")
    changed = await outreach.client.patch(
        f"/v1/inboxes/{inbox_id}", headers=outreach.headers, json={"sent_folder_mode": "provider"}
    )
    assert changed.status_code == 200 and changed.json()["sent_folder_mode"] == "provider"
    refused = await outreach.client.patch(
        f"/v1/inboxes/{inbox_id}", headers=outreach.headers, json={"sent_folder_mode": "sometimes"}
    )
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "sent_folder_mode"
