"""Issue 26, item 6: OAuth tokens that die, against the local OAuth provider (a real HTTP server on loopback,
answering failures on demand and counting the requests it gets), with the worker loops driven directly and
an injected clock:

- a dead refresh token (400 invalid_grant) disconnects the inbox once, gives its emails back untried, and
  nothing asks the token endpoint for it again until the user consents again;
- a failing token endpoint (5xx, no answer) makes the inbox back off, exponentially, still connected; the
  email goes once the endpoint works again;
- another refusal (invalid_client: the server's own OAuth client) disconnects it with the provider's words,
  keeps the token, and the login check reconnects it once the client works again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from imail.inboxes import oauth
from imail.inboxes.connection import CredentialsUnavailable
from imail.inboxes.monitor import check_due_inboxes, report_token_failure
from imail.kit import crypto
from imail.kit.clock import utcnow
from imail.models.sending import Message
from imail.workers import sending as sending_worker
from imail.workers.imap_reader import inbound_pool, read_inboxes
from tests.fixtures.oauth import CLIENT_SECRET, OAuthTestProvider
from tests.inboxes.conftest import events_of, inbox_rows, load_inbox, unique_email
from tests.inboxes.test_oauth import (  # noqa: F401
    consent,
    oauth_dovecot,
    oauth_smtp,
    oauth_smtp_servers,
    provider,
    settings,
)
from tests.sending.conftest import Clock, Outreach, freeze_api_clock, outreach  # noqa: F401

STEP_1 = {"subject": "Hi {{first_name|there}}", "body": "<p>Hello {{first_name|there}}.</p>"}


@pytest.fixture
def clock() -> Clock:
    # The OAuth callback stamps the inbox with the wall clock; the workers' clock starts just after it.
    return Clock(utcnow().replace(microsecond=0) + timedelta(minutes=1))


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


@pytest.fixture
async def reader(outreach: Outreach):  # noqa: F811
    yield outreach.ctx
    await inbound_pool(outreach.ctx).close()


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def google_campaign(outreach: Outreach, *leads: str) -> str:  # noqa: F811
    """A consented Google inbox (no sending gap) sending a one-step campaign to `leads`; its id."""
    created = await outreach.client.post(
        "/v1/inboxes",
        headers=outreach.headers,
        json={"provider": "google", "email": unique_email(), "name": "Ana", "sending_gap_minutes": 0},
    )
    assert created.status_code == 201, created.text
    inbox = created.json()
    assert (await consent(outreach.client, inbox["setup_url"])).status_code == 200
    outreach.inbox_ids.append(inbox["id"])
    campaign = await outreach.campaign([STEP_1])
    for lead in leads:
        await outreach.lead(campaign["id"], lead, first_name="Ana")
    await outreach.resume(campaign["id"])
    return inbox["id"]


async def view(outreach: Outreach, inbox_id: str) -> dict:  # noqa: F811
    response = await outreach.client.get(f"/v1/inboxes/{inbox_id}", headers=outreach.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_dead_refresh_token_disconnects_once_and_nothing_asks_again_until_consent(
    outreach: Outreach,  # noqa: F811
    provider: OAuthTestProvider,  # noqa: F811
    oauth_smtp,  # noqa: F811
    reader,
    worker_context,
    database,
    clock: Clock,
):
    inbox_id = await google_campaign(outreach, "lead-a@example.org", "lead-b@example.org")
    provider.revoke_all()  # the user removed imail's access at Google
    oauth.ACCESS_TOKENS.clear()
    asked = provider.token_requests()
    monitor = worker_context(inbox_check_interval=5)

    # Several passes of every loop that logs in: sending, the IMAP reader, the login check.
    for _ in range(4):
        await outreach.drain()
        await read_inboxes(reader)
        await check_due_inboxes(monitor, clock.now + timedelta(hours=1))
        clock.advance(minutes=20)
    assert provider.token_requests() - asked == 1, "one refresh attempt, then none"

    down = await view(outreach, inbox_id)
    assert down["status"] == "disconnected" and down["setup_url"]
    assert "invalid_grant" in down["last_error"] and "setup_url" in down["last_error"]
    assert (await inbox_rows(database))[0]["oauth_refresh_token_encrypted"] is None
    [event] = await events_of(database, "inbox.disconnected", inbox_id)
    assert event.data["side"] == "both" and "invalid_grant" in event.data["detail"]
    # The claimed emails went back to the queue untried: not failed, no attempt counted, nothing sent.
    messages = await outreach.rows(Message)
    assert messages and all(m.status == "retry" and m.attempts == 0 for m in messages)
    assert oauth_smtp.messages == []

    # The user consents again: reconnected once, and the emails go.
    assert (await consent(outreach.client, down["setup_url"])).status_code == 200
    up = await view(outreach, inbox_id)
    assert up["status"] == "connected" and up["last_error"] is None
    assert len(await events_of(database, "inbox.reconnected", inbox_id)) == 1
    clock.advance(minutes=20)
    await outreach.drain()
    messages = await outreach.rows(Message)
    assert [(m.status, m.attempts) for m in messages] == [("sent", 1)] * 2
    assert len(oauth_smtp.wait_for_messages(2)) == 2
    assert len(await events_of(database, "inbox.disconnected", inbox_id)) == 1


async def test_loops_meeting_a_dead_token_at_once_record_one_disconnection(
    outreach: Outreach,  # noqa: F811
    provider: OAuthTestProvider,  # noqa: F811
    reader,
    worker_context,
    database,
    clock: Clock,
):
    inbox_id = await google_campaign(outreach, "lead-a@example.org")
    stale = await load_inbox(database, inbox_id)  # a copy read before the token died (another worker's)
    provider.revoke_all()
    oauth.ACCESS_TOKENS.clear()
    asked = provider.token_requests()
    await asyncio.gather(
        sending_worker.send_due(outreach.ctx),
        read_inboxes(reader),
        check_due_inboxes(worker_context(inbox_check_interval=5), clock.now + timedelta(hours=1)),
    )
    assert provider.token_requests() - asked == 1
    # Another process, with its own copy, meets the same dead token and reports it too.
    dead = CredentialsUnavailable("Google refused the token request: invalid_grant", token_dead=True)
    async with database.transaction() as session:
        await report_token_failure(session, stale, dead, clock.now)
    assert len(await events_of(database, "inbox.disconnected", inbox_id)) == 1
    row = await load_inbox(database, inbox_id)
    assert row.status == "disconnected" and row.oauth_refresh_token_encrypted is None


async def test_a_failing_token_endpoint_backs_the_inbox_off_and_the_email_goes_once_it_works(
    outreach: Outreach,  # noqa: F811
    provider: OAuthTestProvider,  # noqa: F811
    oauth_smtp,  # noqa: F811
    reader,
    worker_context,
    database,
    clock: Clock,
):
    inbox_id = await google_campaign(outreach, "lead-a@example.org")
    oauth.ACCESS_TOKENS.clear()
    provider.fail_token_requests(503, 0, 502)  # a 503, then no answer at all, then a 502
    asked = provider.token_requests()
    monitor = worker_context(inbox_check_interval=5)

    async def every_loop() -> None:
        await outreach.drain()
        await read_inboxes(reader)
        await check_due_inboxes(monitor, clock.now)

    # Each failure doubles the wait (1, 2, 4 minutes); within a wait nothing asks the endpoint.
    for failures, wait in ((1, 1), (2, 2), (3, 4)):
        await every_loop()
        assert provider.token_requests() - asked == failures
        shown = await view(outreach, inbox_id)
        assert shown["status"] == "connected"
        backoff = shown["sending_backoff"]
        assert backoff["throttles_in_a_row"] == failures
        assert backoff["next_attempt_at"] == at(clock.now + timedelta(minutes=wait))
        assert "token endpoint" in backoff["reason"]
        [message] = await outreach.rows(Message)
        assert message.status == "retry" and message.attempts == 0, "waiting, not failed"
        assert "token endpoint" in message.smtp_response

        clock.advance(minutes=wait, seconds=-1)
        await every_loop()
        assert provider.token_requests() - asked == failures, "nothing asks before the wait is over"
        clock.advance(seconds=2)

    # The endpoint works again: the first attempt after the wait gets a token and the email goes, once.
    await outreach.drain()
    assert provider.token_requests() - asked == 4
    [message] = await outreach.rows(Message)
    assert message.status == "sent" and message.attempts == 1
    assert len(oauth_smtp.wait_for_messages(1)) == 1
    assert await events_of(database, "inbox.disconnected", inbox_id) == []
    assert (await load_inbox(database, inbox_id)).read_failures == 0, "not counted as failed reads"


async def test_a_refused_client_disconnects_with_the_providers_words_and_reconnects_once_fixed(
    outreach: Outreach,  # noqa: F811
    provider: OAuthTestProvider,  # noqa: F811
    worker_context,
    database,
    clock: Clock,
):
    inbox_id = await google_campaign(outreach, "lead-a@example.org")
    oauth.ACCESS_TOKENS.clear()
    provider.client_secret = "rotated-at-the-provider"  # imail's IMAIL_GOOGLE_CLIENT_SECRET is now wrong
    try:
        asked = provider.token_requests()
        await outreach.drain()
        assert provider.token_requests() - asked == 1
        down = await view(outreach, inbox_id)
        assert down["status"] == "disconnected" and "invalid_client" in down["last_error"]
        [message] = await outreach.rows(Message)
        assert message.status == "retry" and message.attempts == 0
        # Not the user's doing: the token is kept, sending does not ask again, the login check does (once
        # per interval), and a second refusal records no second event.
        assert (await inbox_rows(database))[0]["oauth_refresh_token_encrypted"] is not None
        clock.advance(minutes=20)
        await outreach.drain()
        assert provider.token_requests() - asked == 1
        monitor = worker_context()
        assert await check_due_inboxes(monitor, clock.now + timedelta(hours=1)) == 1
        assert provider.token_requests() - asked == 2
        assert len(await events_of(database, "inbox.disconnected", inbox_id)) == 1
    finally:
        provider.client_secret = CLIENT_SECRET
    # The operator fixes the client: the next check reconnects the inbox by itself.
    assert await check_due_inboxes(monitor, clock.now + timedelta(hours=2)) == 1
    assert (await view(outreach, inbox_id))["status"] == "connected"
    assert len(await events_of(database, "inbox.reconnected", inbox_id)) == 1


async def test_a_provider_rotating_refresh_tokens_keeps_every_loop_logged_in_with_one_refresh_per_hour(
    outreach: Outreach,  # noqa: F811
    provider: OAuthTestProvider,  # noqa: F811
    oauth_smtp,  # noqa: F811
    reader,
    database,
    clock: Clock,
):
    """A provider that issues a new refresh token with every refresh and revokes the old one (the strict
    form of Microsoft's rotation): whichever loop refreshed stores the new token, so the others' next
    refresh does not meet invalid_grant; and the access token is reused until it expires, not refreshed (and
    rotated) on every pass."""
    inbox_id = await google_campaign(outreach, "lead-a@example.org", "lead-b@example.org")
    provider.rotate_refresh_tokens = True
    oauth.ACCESS_TOKENS.clear()
    asked = provider.token_requests()

    await outreach.drain()  # sending refreshes first, and keeps what the provider rotated
    assert provider.token_requests() - asked == 1
    stored = (await inbox_rows(database))[0]["oauth_refresh_token_encrypted"]
    assert crypto.secret_box(outreach.ctx.settings).decrypt(stored) in provider.refresh_tokens
    for _ in range(3):  # the reader and more sending passes within the hour: the same access token
        await read_inboxes(reader)
        await outreach.drain()
        clock.advance(minutes=5)
    assert provider.token_requests() - asked == 1
    oauth.ACCESS_TOKENS.clear()  # as after the access token's hour, or in another worker process
    assert await check_due_inboxes(outreach.ctx, clock.now + timedelta(hours=1)) == 1  # a fresh login
    assert provider.token_requests() - asked == 2
    assert (await load_inbox(database, inbox_id)).status == "connected"
    assert len(oauth_smtp.wait_for_messages(2)) == 2
    assert await events_of(database, "inbox.disconnected", inbox_id) == []
