"""Issue 26, item 3: what a real MTA answers at submission, made by Postfix's own restrictions (a policy
service for the stateful answers, access maps for the fixed ones), and what imail does with each:

- 421 / 4.7.x throttling → the inbox backs off (exponential, visible on the inbox), its emails wait, not
failed;
- 451 greylisting → the email is retried after a delay;
- 550 5.1.1 at RCPT → a hard bounce at once;
- 552 mailbox full at RCPT → a soft bounce, retried.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from imail.models.sending import Message
from tests.fixtures.postfix import FULL, GONE, REMOTE, MailLab
from tests.lab.conftest import LabMailbox
from tests.sending.conftest import Clock, Outreach, clock, freeze_api_clock, outreach  # noqa: F401

STEP_1 = {"subject": "Hi {{first_name|there}}", "body": "<p>Hello {{first_name|there}}.</p>"}
THROTTLED = "421 4.7.0 Error: too many messages from you, slow down"


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):  # noqa: F811
    freeze_api_clock(monkeypatch, clock)


def remote_address(name: str = "lead") -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@{REMOTE}"


async def start(outreach: Outreach, mailbox: LabMailbox, *addresses: str) -> tuple[str, dict]:  # noqa: F811
    inbox_id = await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1])
    for address in addresses:
        await outreach.lead(campaign["id"], address, first_name="Ana")
    await outreach.resume(campaign["id"])
    return inbox_id, campaign


async def inbox_view(outreach: Outreach, inbox_id: str) -> dict:  # noqa: F811
    response = await outreach.client.get(f"/v1/inboxes/{inbox_id}", headers=outreach.headers)
    assert response.status_code == 200, response.text
    return response.json()


def relayed_to(lab: MailLab, address: str) -> list:
    return [m for m in lab.sink.messages if address in m.envelope_to]


async def test_a_throttled_inbox_backs_off_exponentially_and_its_email_waits_then_goes(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
    clock: Clock,  # noqa: F811
):
    lead = remote_address()
    mail_lab.policy.always(lab_mailbox.email, THROTTLED)
    inbox_id, _ = await start(outreach, lab_mailbox, lead)
    await outreach.drain()
    [message] = await outreach.rows(Message)
    assert message.status == "retry" and message.attempts == 0 and "421 4.7.0" in message.smtp_response
    backoff = (await inbox_view(outreach, inbox_id))["sending_backoff"]
    assert backoff["reason"].startswith("421 4.7.0") and backoff["throttles_in_a_row"] == 1
    first_until = clock.now + timedelta(minutes=1)
    assert backoff["next_attempt_at"] == first_until.isoformat().replace("+00:00", "Z")

    # Within the wait nothing is even tried: Postfix is not asked again.
    asked = len(mail_lab.policy.requests)
    clock.advance(seconds=30)
    await outreach.drain()
    assert len(mail_lab.policy.requests) == asked

    # Throttled again right after the wait: the wait doubles.
    clock.advance(seconds=31)
    await outreach.drain()
    backoff = (await inbox_view(outreach, inbox_id))["sending_backoff"]
    assert backoff["throttles_in_a_row"] == 2
    assert backoff["next_attempt_at"] == (clock.now + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    [message] = await outreach.rows(Message)
    assert message.status == "retry" and message.attempts == 0

    # The server lets the inbox send again: the email goes, once, and was never failed.
    mail_lab.policy.always(lab_mailbox.email, None)
    clock.advance(minutes=2, seconds=1)
    await outreach.drain()
    [message] = await outreach.rows(Message)
    assert message.status == "sent" and message.attempts == 1
    assert len(mail_lab.wait_for_sink_to(lead)) == 1
    assert (
        await outreach.events("email.bounced.hard") == []
        and await outreach.events("email.bounced.soft") == []
    )


async def test_greylisting_is_retried_after_a_delay_and_the_inbox_does_not_back_off(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
    clock: Clock,  # noqa: F811
):
    lead = remote_address()
    mail_lab.policy.script(
        lead, f"451 4.7.1 <{lead}>: Recipient address rejected: Greylisted, try again later"
    )
    inbox_id, _ = await start(outreach, lab_mailbox, lead)
    await outreach.drain()
    [message] = await outreach.rows(Message)
    assert message.status == "retry" and "451 4.7.1" in message.smtp_response
    assert (await inbox_view(outreach, inbox_id))["sending_backoff"] is None
    await outreach.drain()  # not before the retry delay
    assert relayed_to(mail_lab, lead) == []
    clock.advance(minutes=2)
    await outreach.drain()
    [message] = await outreach.rows(Message)
    assert message.status == "sent" and message.attempts == 2
    assert len(mail_lab.wait_for_sink_to(lead)) == 1


async def test_550_5_1_1_at_rcpt_is_a_hard_bounce_at_once(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
):
    other = remote_address()
    await start(outreach, lab_mailbox, GONE, other)
    await outreach.drain()
    [bounce] = await outreach.events("email.bounced.hard")
    assert bounce.data["email"] == GONE and bounce.data["status_code"] == "550"
    assert "5.1.1" in bounce.data["diagnostic"]
    listed = (await outreach.client.get("/v1/suppressions", headers=outreach.headers)).json()["data"]
    assert [s["value"] for s in listed] == [GONE]
    assert len(mail_lab.wait_for_sink_to(other)) == 1 and relayed_to(mail_lab, GONE) == []


async def test_552_mailbox_full_at_rcpt_is_a_soft_bounce_and_retried(
    outreach: Outreach,  # noqa: F811
    lab_mailbox: LabMailbox,
    mail_lab: MailLab,
):
    await start(outreach, lab_mailbox, FULL)
    await outreach.drain()
    [soft] = await outreach.events("email.bounced.soft")
    assert soft.data["category"] == "mailbox_full" and soft.data["status_code"] == "5.2.2"
    assert soft.data["will_retry"] is True
    [message] = await outreach.rows(Message)
    assert message.status == "retry"
    assert await outreach.events("email.bounced.hard") == []
    listed = (await outreach.client.get("/v1/suppressions", headers=outreach.headers)).json()["data"]
    assert listed == []
