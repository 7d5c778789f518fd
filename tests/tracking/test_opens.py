"""How opens are judged (imail.tracking.machine), with the user agents the real fetchers send: mailbox
providers' image proxies fetching on open are people; prefetching at delivery (Apple Mail Privacy Protection,
security scanners, anything within seconds of sending) is not."""

from __future__ import annotations

import httpx
import pytest

from imail.models.sending import Message
from tests.sending.conftest import freeze_api_clock
from tests.tracking.test_tracking import send_one

pytestmark = pytest.mark.usefixtures("sink")

GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
OUTLOOK_DESKTOP = "Mozilla/4.0 (compatible; ms-office; MSOffice rmj) Microsoft Outlook 16.0.17928; Pro"
OUTLOOK_IOS = "Outlook-iOS-ImageProxy/1.0"
APPLE_MAIL_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
APPLE_PRIVACY = "Mozilla/5.0"
BARRACUDA = "Barracuda Sentinel (EE)"
MIMECAST = "Mozilla/5.0 (compatible; Mimecast-URL-Protect/1.0)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 "
    "Safari/537.36"
)
HOME = "203.0.113.9"  # documentation range: a reader's own address
APPLE_NETWORK = "17.58.63.10"


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


@pytest.mark.parametrize(
    ("agent", "address", "seconds_after_sending", "machine"),
    [
        pytest.param(GMAIL, "66.249.84.1", 300, False, id="gmail-proxy"),
        pytest.param(YAHOO, "98.136.1.1", 3600, False, id="yahoo-proxy"),
        pytest.param(OUTLOOK_DESKTOP, HOME, 120, False, id="outlook-desktop"),
        pytest.param(OUTLOOK_IOS, "52.96.1.1", 120, False, id="outlook-ios-proxy"),
        pytest.param(APPLE_MAIL_MAC, HOME, 900, False, id="apple-mail-without-privacy-protection"),
        pytest.param(APPLE_PRIVACY, APPLE_NETWORK, 40, True, id="apple-privacy-protection"),
        pytest.param(APPLE_PRIVACY, "104.28.1.1", 40, True, id="apple-privacy-protection-egress"),
        pytest.param(APPLE_MAIL_MAC, APPLE_NETWORK, 600, True, id="from-apples-network"),
        pytest.param(GMAIL, "66.249.84.1", 2, True, id="gmail-proxy-seconds-after-sending"),
        pytest.param(APPLE_MAIL_MAC, HOME, 3, True, id="any-fetch-seconds-after-sending"),
        pytest.param(BARRACUDA, HOME, 60, True, id="barracuda"),
        pytest.param(MIMECAST, HOME, 60, True, id="mimecast"),
        pytest.param(HEADLESS, HOME, 60, True, id="headless-browser"),
        pytest.param("", HOME, 60, True, id="no-agent"),
    ],
)
async def test_who_fetches_the_pixel_decides_whether_it_is_a_human_open(
    outreach, mailbox, sink, app, clock, agent, address, seconds_after_sending, machine
):
    _, _, pixel, _ = await send_one(outreach, mailbox, sink)
    clock.advance(seconds=seconds_after_sending)
    transport = httpx.ASGITransport(app=app, client=(address, 52000))
    async with httpx.AsyncClient(transport=transport, base_url="http://imail.test") as fetcher:
        response = await fetcher.get(pixel, headers={"User-Agent": agent})
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    [opened] = await outreach.events("email.opened")
    assert opened.data["machine"] is machine
    [message] = await outreach.rows(Message)
    assert (message.opened_at is not None) is not machine  # only a person's open drives "opened" branches
