"""Replayed tracking hits: every hit still counts in the totals, but hits of one pixel or link within 60 s are
one event and one webhook delivery; the public routes are rate-limited per client address."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from imail.analytics.rollups import rebuild
from imail.main import create_app
from tests.fixtures import services
from tests.sending.conftest import freeze_api_clock
from tests.tracking.test_tracking import BROWSER, send_one
from tests.webhooks.conftest import create_endpoint, deliveries

pytestmark = pytest.mark.usefixtures("sink")


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


async def totals(outreach, client, event_type: str) -> dict:
    """The analytics totals of the day the first such event was stamped with (the events' own clock)."""
    day = str((await outreach.events(event_type))[0].created_at.date())
    report = await client.get(
        "/v1/analytics/workspace", headers=outreach.headers, params={"from": day, "to": day}
    )
    assert report.status_code == 200, report.text
    return report.json()["totals"]


async def test_twenty_hits_of_one_pixel_are_one_event_and_one_webhook(outreach, mailbox, sink, client, clock):
    await create_endpoint(client, outreach.headers, "https://hooks.example.com/imail", ["email.opened"])
    lead, _, pixel, _ = await send_one(outreach, mailbox, sink)
    clock.advance(minutes=5)
    for _ in range(10):
        assert (await client.get(pixel, headers=BROWSER)).status_code == 200
    # Concurrent replays too: exactly one of them opens the window.
    answers = await asyncio.gather(*(client.get(pixel, headers=BROWSER) for _ in range(10)))
    assert {a.status_code for a in answers} == {200}
    [opened] = await outreach.events("email.opened")
    assert opened.data["lead_id"] == lead["id"]
    assert len(await deliveries(outreach.database)) == 1
    counted = await totals(outreach, client, "email.opened")
    assert (counted["opened"], counted["opened_unique"]) == (20, 1)  # the totals keep every hit

    clock.advance(seconds=59)
    await client.get(pixel, headers=BROWSER)
    assert len(await outreach.events("email.opened")) == 1
    clock.advance(seconds=2)  # 61 s after the event: a new window
    await client.get(pixel, headers=BROWSER)
    assert len(await outreach.events("email.opened")) == 2
    assert len(await deliveries(outreach.database)) == 2
    counted = await totals(outreach, client, "email.opened")
    assert (counted["opened"], counted["opened_unique"]) == (22, 1)
    # The event log still holds every hit (repeats as an internal type), so a rebuild gives the same totals.
    async with outreach.database.transaction() as session:
        await rebuild(session, None)
    assert await totals(outreach, client, "email.opened") == counted


async def test_repeated_clicks_of_one_link_are_one_event_per_minute(outreach, mailbox, sink, client, clock):
    _, links, _, _ = await send_one(outreach, mailbox, sink)
    clock.advance(minutes=5)
    for _ in range(5):
        first = await client.get(links[0], headers=BROWSER)
        assert first.status_code == 302 and first.headers["location"] == "https://acme.io/demo?x=1"
    second = await client.get(links[1], headers=BROWSER)  # another link is another token: its own event
    assert second.headers["location"] == "https://acme.io/price"
    clicks = await outreach.events("email.clicked")
    assert sorted(c.data["url"] for c in clicks) == ["https://acme.io/demo?x=1", "https://acme.io/price"]
    counted = await totals(outreach, client, "email.clicked")
    assert (counted["clicked"], counted["clicked_unique"]) == (6, 1)
    clock.advance(seconds=61)
    await client.get(links[0], headers=BROWSER)
    assert len(await outreach.events("email.clicked")) == 3


async def test_head_requests_are_answered_but_not_counted(outreach, mailbox, sink, client, clock):
    _, links, pixel, _ = await send_one(outreach, mailbox, sink)
    clock.advance(minutes=5)
    head = await client.head(pixel, headers=BROWSER)
    assert head.status_code == 200 and head.headers["content-type"] == "image/gif" and head.content == b""
    link_check = await client.head(links[0], headers=BROWSER)
    assert link_check.status_code == 302 and link_check.headers["location"] == "https://acme.io/demo?x=1"
    assert await outreach.events("email.opened") == [] and await outreach.events("email.clicked") == []


async def test_public_tracking_routes_are_rate_limited_per_address(settings, database, workspace):
    """Burst 3, refilling 1 a minute: the fourth request from one address within the test is refused (429 in
    the contract's shape, with Retry-After) on every public route, while another address is still served."""
    limited = settings.model_copy(
        update={
            "tracking_rate_limit_per_minute": 1,
            "tracking_rate_limit_burst": 3,
            "redis_url": services.REDIS_URL or None,
        }
    )  # shared buckets when there
    app = create_app(limited)
    # Addresses of their own, so a bucket left in a shared Redis by an earlier run cannot interfere.
    address, other = (f"198.51.{uuid.uuid4().int % 250}.{n}" for n in (1, 2))
    async with app.router.lifespan_context(app):

        def client_from(host: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://imail.test"
            )

        async with client_from(address) as hammer, client_from(other) as bystander:
            for path in ("/t/o/forged.gif", "/t/c/forged", "/u/forged"):
                response = await hammer.get(path)
                assert response.status_code in (200, 404), response.text
            for method, path in (
                ("GET", "/t/o/forged.gif"),
                ("GET", "/t/c/forged"),
                ("GET", "/u/forged"),
                ("POST", "/u/forged"),
            ):
                refused = await hammer.request(method, path)
                assert refused.status_code == 429, (path, refused.text)
                assert refused.json()["error"]["code"] == "rate_limited"
                assert int(refused.headers["Retry-After"]) >= 1
            assert (await bystander.get("/t/o/forged.gif")).status_code == 200
