"""Opens, clicks and unsubscribes from a real sent email's links: signed, bound to that email, not
forgeable."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default

import pytest

from imail.kit.signing import Signer
from imail.models.sending import Message
from tests.conftest import TEST_SECRET
from tests.sending.conftest import freeze_api_clock

pytestmark = pytest.mark.usefixtures("sink")

STEP = {
    "subject": "Hi {{first_name}}",
    "body": '<p>See <a href="https://acme.io/demo?x=1">the demo</a> and <a href="https://acme.io/price">prices</a></p>',
}
BROWSER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"}


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


async def send_one(outreach, mailbox, sink, email="ana@example.org"):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign(
        [STEP, {"body": "<p>bump</p>", "delay": {"amount": 1, "unit": "days"}}]
    )
    lead = await outreach.lead(campaign["id"], email, first_name="Ana")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 1
    msg = message_from_bytes(sink.messages[-1].data, policy=default)
    html = msg.get_body(("html",)).get_content()
    links = re.findall(r'href="https://t\.acme\.test(/t/c/[^"]+)"', html)
    pixel = re.search(r"url\('https://t\.acme\.test(/t/o/[^']+)'\)", html).group(1)
    unsubscribe = re.search(r"<https://t\.acme\.test(/u/[^>]+)>", msg["List-Unsubscribe"]).group(1)
    return lead, links, pixel, unsubscribe


async def test_open_pixel_records_an_open(outreach, mailbox, sink, client, clock):
    lead, _, pixel, _ = await send_one(outreach, mailbox, sink)
    clock.advance(minutes=5)
    response = await client.get(pixel, headers=BROWSER)
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    [opened] = await outreach.events("email.opened")
    assert opened.data["lead_id"] == lead["id"] and opened.data["machine"] is False
    [message] = await outreach.rows(Message)
    assert message.opened_at is not None


async def test_gmails_image_proxy_fetching_on_open_is_a_human_open(outreach, mailbox, sink, client, clock):
    _, _, pixel, _ = await send_one(outreach, mailbox, sink)
    clock.advance(minutes=5)
    await client.get(
        pixel,
        headers={
            "User-Agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
            "GoogleImageProxy)"
        },
    )
    [opened] = await outreach.events("email.opened")
    assert opened.data["machine"] is False  # Gmail fetches when the reader opens the email
    [message] = await outreach.rows(Message)
    assert message.opened_at is not None


async def test_click_redirects_only_to_the_emails_own_links(outreach, mailbox, sink, client, clock):
    _, links, _, _ = await send_one(outreach, mailbox, sink)
    clock.advance(minutes=5)
    first = await client.get(links[0], headers=BROWSER)
    assert first.status_code == 302 and first.headers["location"] == "https://acme.io/demo?x=1"
    second = await client.get(links[1], headers=BROWSER)
    assert second.headers["location"] == "https://acme.io/price"
    clicks = await outreach.events("email.clicked")
    assert [c.data["url"] for c in clicks] == ["https://acme.io/demo?x=1", "https://acme.io/price"]
    assert all(c.data["machine"] is False for c in clicks)


async def test_forged_or_swapped_tokens_are_refused(outreach, mailbox, sink, client, clock, make_mailbox):
    _, links, _, unsubscribe = await send_one(outreach, mailbox, sink)
    [message] = await outreach.rows(Message)
    forged = Signer("another-secret-" + "x" * 30).sign("click", f"{message.id}:0")
    assert (await client.get(f"/t/c/{forged}")).status_code == 404
    out_of_range = Signer(TEST_SECRET).sign("click", f"{message.id}:7")
    assert (await client.get(f"/t/c/{out_of_range}")).status_code == 404
    open_token_as_click = Signer(TEST_SECRET).sign("open", message.id)
    assert (await client.get(f"/t/c/{open_token_as_click}")).status_code == 404
    other_lead = Signer(TEST_SECRET).sign("unsubscribe", "msg_01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert (await client.post(f"/u/{other_lead}")).status_code == 404
    assert (await client.get(links[0] + "x")).status_code == 404
    assert await outreach.events("email.clicked") == []


async def test_link_scanner_clicks_right_after_sending_are_flagged(outreach, mailbox, sink, client, clock):
    _, links, _, _ = await send_one(outreach, mailbox, sink)
    response = await client.get(links[0], headers=BROWSER)  # same instant as the send
    assert response.status_code == 302
    [click] = await outreach.events("email.clicked")
    assert click.data["machine"] is True


async def test_unsubscribe_get_confirms_and_post_unsubscribes(outreach, mailbox, sink, client, clock):
    lead, _, _, unsubscribe = await send_one(outreach, mailbox, sink)
    page = await client.get(unsubscribe)
    assert page.status_code == 200 and "<form method=post>" in page.text
    assert (await outreach.lead_row(lead["id"])).status == "active"  # a GET changes nothing
    one_click = await client.post(
        unsubscribe,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    assert (await outreach.lead_row(lead["id"])).status == "unsubscribed"
    assert (await outreach.state(lead["id"])).stop_reason == "unsubscribed"
    suppressed = (await client.get("/v1/suppressions", headers=outreach.headers)).json()["data"]
    assert [(s["value"], s["reason"]) for s in suppressed] == [("ana@example.org", "unsubscribed")]
    clock.advance(days=2)
    await outreach.drain()
    assert len(sink.messages) == 1
    assert (await client.post(unsubscribe)).status_code == 200  # idempotent
    [counted] = await outreach.events("lead.unsubscribed")  # once, for analytics
    assert counted.data["lead_id"] == lead["id"]
    # The day the event was stamped with, whatever today is: never a range from it to the test clock's date.
    day = str(counted.created_at.date())
    report = (
        await client.get("/v1/analytics/workspace", headers=outreach.headers, params={"from": day, "to": day})
    ).json()
    assert report["totals"]["unsubscribed"] == 1
