"""What a careful sender checks in the raw messages (issue 25): a visible opt-out link and a footer,
plain-text-only emails, and nothing naming the software. Sent by the engine through a real SMTP server
(aiosmtpd), filed into the sender's Sent folder in Dovecot and read back from there over IMAP."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from tests.sending.conftest import freeze_api_clock

pytestmark = pytest.mark.usefixtures("sink")

OPENER = {
    "subject": "Quick question, {{first_name|there}}",
    "body": '<p>Hi {{first_name|there}}, worth a look? <a href="https://acme.io/demo">The demo</a>.</p>'
    '<p>Not for you? <a href="{{unsubscribe_url}}">Unsubscribe</a>.</p>',
}
FOLLOW_UP = {"body": "<p>Bumping this, {{first_name|there}}.</p>", "delay": {"amount": 2, "unit": "days"}}
ADDRESS = "Acme Ltd\n1 Market Street\nSpringfield, IL 62701"


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


def sent_folder(dovecot, mailbox) -> list[EmailMessage]:
    """The sender's Sent folder as Dovecot holds it, oldest first."""
    return [
        message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=default)
        for raw in dovecot.fetch_all(mailbox.email, "Sent")
    ]


def one_click_url(message: EmailMessage) -> str:
    return re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"]).group(1)


async def test_unsubscribe_url_and_the_workspace_footer_reach_the_mailbox(outreach, mailbox, dovecot, clock):
    await outreach.connect_inbox(mailbox)
    footer = {"postal_address": ADDRESS, "footer_text": "Rather not hear from us? {{unsubscribe_url}}"}
    updated = await outreach.client.patch("/v1/workspace", headers=outreach.headers, json=footer)
    assert updated.status_code == 200, updated.text
    campaign = await outreach.campaign([OPENER, FOLLOW_UP], include_footer=True)
    assert campaign["include_footer"] is True and campaign["track_clicks"] is True
    await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 1
    clock.advance(days=2, minutes=1)
    assert await outreach.drain() == 1

    opener, follow_up = sent_folder(dovecot, mailbox)
    for message in (opener, follow_up):
        url = one_click_url(message)  # the header's signed https link …
        assert url.startswith("https://t.acme.test/u/")
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        # … is the footer's link, in both parts, and never a click redirect
        assert f'<a href="{url}">{url}</a>' in html and f"Rather not hear from us? {url}" in text
        assert "1 Market Street" in html and "Acme Ltd\n1 Market Street\nSpringfield, IL 62701" in text
    html = opener.get_body(("html",)).get_content()
    assert f'<a href="{one_click_url(opener)}">Unsubscribe</a>' in html  # {{unsubscribe_url}} in the body
    assert "https://t.acme.test/t/c/" in html and "https://acme.io/demo" not in html  # other links tracked
    assert one_click_url(opener) != one_click_url(follow_up)  # each email names itself

    # The visible link works like the header: POST unsubscribes (RFC 8058), the lead is suppressed.
    path = one_click_url(opener).removeprefix("https://t.acme.test")
    done = await outreach.client.post(path)
    assert done.status_code == 200 and "ana@example.org" in done.text
    suppressions = await outreach.client.get("/v1/suppressions", headers=outreach.headers)
    assert [s["value"] for s in suppressions.json()["data"]] == ["ana@example.org"]


async def test_a_text_only_campaign_sends_one_plain_part_without_pixel(outreach, mailbox, dovecot):
    await outreach.connect_inbox(mailbox)
    tracked = await outreach.campaign([OPENER], text_only=True)
    untracked = await outreach.campaign([OPENER], text_only=True, track_clicks=False, name="untracked")
    assert tracked["text_only"] is True and tracked["track_opens"] is True
    await outreach.lead(tracked["id"], "ana@example.org", first_name="Ana")
    await outreach.lead(untracked["id"], "bob@example.org", first_name="Bob")
    await outreach.resume(tracked["id"])
    await outreach.resume(untracked["id"])
    assert await outreach.drain() == 2

    by_recipient = {m["To"].addresses[0].addr_spec: m for m in sent_folder(dovecot, mailbox)}
    for message in by_recipient.values():
        assert not message.is_multipart() and message.get_content_type() == "text/plain"
        raw = message.as_string()
        assert "<" not in message.get_content().replace("<https://", "")  # no markup at all
        assert "/t/o/" not in raw and "background-image" not in raw  # no open pixel
        assert f"Unsubscribe ({one_click_url(message)})" in message.get_content()
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Links are written out as plain URLs: through the click redirect only when click tracking is on.
    ana = by_recipient["ana@example.org"].get_content()
    assert re.search(r"The demo \(https://t\.acme\.test/t/c/[^)]+\)", ana) and "acme.io/demo" not in ana
    assert "The demo (https://acme.io/demo)" in by_recipient["bob@example.org"].get_content()
    assert "/t/c/" not in by_recipient["bob@example.org"].get_content()


async def test_no_header_boundary_or_message_id_names_the_software(outreach, mailbox, dovecot):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([OPENER])
    for n in range(3):
        await outreach.lead(campaign["id"], f"lead{n}@example.org", first_name=f"L{n}")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 3

    raws = dovecot.fetch_all(mailbox.email, "Sent")
    boundaries = set()
    for raw in raws:
        message = message_from_bytes(raw, policy=default)
        head = raw.split(b"\r\n\r\n", 1)[0].decode()
        assert "imail" not in head.lower(), head
        boundary = message.get_boundary()
        # Shaped like Thunderbird's: twelve dashes, then 24 random letters and digits.
        assert re.fullmatch(r"-{12}[A-Za-z0-9]{24}", boundary), boundary
        boundaries.add(boundary)
        assert re.fullmatch(r"<[0-9a-z]{26}@example\.com>", message["Message-ID"]), message["Message-ID"]
        assert not any(name.lower().startswith(("x-mailer", "user-agent", "x-imail")) for name in message)
        assert b"imail" not in raw.lower().replace(b"t.acme.test", b"")
    assert len(boundaries) == 3
