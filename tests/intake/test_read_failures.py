"""Reads that keep failing, against real servers: a Dovecot that is stopped, a password changed on the server,
a mailbox the server refuses to open, and (the one thing simulated) a bug in imail's own reading code.
Failures are counted per inbox and survive a worker restart; a read that works starts the count again; at the
limit the inbox is disconnected once, with the reason, an `inbox.disconnected` event and its webhook;
reconnecting forgets them."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from structlog.testing import capture_logs

from imail.inboxes.monitor import check_due_inboxes
from imail.intake import reader
from imail.workers.context import WorkerContext
from imail.workers.imap_reader import read_inboxes, retry_wait
from imail.workers.webhooks import deliver_webhooks
from tests.fixtures.inbound import newsletter, reply, unique
from tests.fixtures.smtp import make_smtp_server  # noqa: F401
from tests.fixtures.webhook_receiver import Receiver
from tests.intake.conftest import Mailroom, events, poll, replies

LIMIT = 5  # IMAIL_INBOUND_READ_FAILURE_LIMIT's default


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.close()


async def read_when_due(room: Mailroom, ctx: WorkerContext) -> int:
    """One reader iteration at the time the inbox is due again (after its wait since the last read)."""
    state = await poll(room.database, room.outreach.inbox_id)
    if state is not None and state.next_poll_at is not None and state.next_poll_at > room.now:
        room.now = state.next_poll_at
    return await read_inboxes(ctx)


async def view(client: httpx.AsyncClient, workspace, inbox_id: str) -> dict:
    response = await client.get(f"/v1/inboxes/{inbox_id}", headers=workspace.headers())
    assert response.status_code == 200, response.text
    return response.json()


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_the_wait_doubles_from_the_poll_interval_up_to_the_idle_recheck(settings):
    assert settings.inbound_read_failure_limit == LIMIT
    assert (settings.inbound_poll_interval, settings.inbound_idle_recheck) == (45, 1200)
    assert [retry_wait(settings, n) for n in (1, 2, 3, 4, 5, 6, 99)] == [45, 90, 180, 360, 720, 1200, 1200]
    slow = settings.model_copy(update={"inbound_poll_interval": 1500})
    assert [retry_wait(slow, n) for n in (1, 2)] == [1500, 1500]  # never sooner than the interval


async def test_reads_failing_below_the_limit_leave_it_connected_and_show_the_last_error(
    make_mailroom, make_dovecot, client, workspace
):
    private = make_dovecot()
    room: Mailroom = await make_mailroom(private)
    inbox_id = room.outreach.inbox_id
    fresh = await view(client, workspace, inbox_id)
    assert (fresh["read_failures"], fresh["last_read_error"], fresh["last_read_error_at"]) == (0, None, None)

    private.stop()
    for failures in range(1, LIMIT):
        ctx = room.context()  # a new worker each time: the count is on the row, a restart does not reset it
        assert await read_when_due(room, ctx) == 0
        state = await poll(room.database, inbox_id)
        assert state.next_poll_at == room.now + timedelta(seconds=retry_wait(room.settings, failures))
        shown = await view(client, workspace, inbox_id)
        assert shown["status"] == "connected" and shown["read_failures"] == failures
        assert "could not be reached" in shown["last_read_error"]
        assert at(shown["last_read_error_at"]) == room.now
        # Not due again before its wait: nothing is tried, nothing counted.
        assert await read_inboxes(ctx) == 0
        assert (await view(client, workspace, inbox_id))["read_failures"] == failures

    listed = await client.get("/v1/inboxes", headers=workspace.headers())
    [item] = [i for i in listed.json()["data"] if i["id"] == inbox_id]
    assert item["read_failures"] == LIMIT - 1 and "could not be reached" in item["last_read_error"]
    assert await events(room.database, "inbox.disconnected") == []


async def test_the_limit_disconnects_once_with_the_servers_words_and_the_webhook_gets_it(
    make_mailroom, client, workspace, receiver, settings, database
):
    created = await client.post(
        "/v1/webhooks",
        json={"url": receiver.url(), "events": ["inbox.disconnected"]},
        headers=workspace.headers(),
    )
    assert created.status_code == 201, created.text
    room: Mailroom = await make_mailroom()
    inbox_id = room.outreach.inbox_id
    assert await room.read(room.context()) == 0  # it reads fine
    room.server.add_user(room.inbox_email, "changed-by-the-admin")

    for _ in range(LIMIT):
        assert await read_when_due(room, room.context()) == 0  # new workers: each logs in, and is refused
    failed_at = room.now
    shown = await view(client, workspace, inbox_id)
    assert shown["status"] == "disconnected" and shown["read_failures"] == LIMIT
    assert "AUTHENTICATIONFAILED" in shown["last_read_error"] and at(shown["last_read_error_at"]) == failed_at
    assert (
        f"failed {LIMIT} times in a row" in shown["last_error"]
        and "AUTHENTICATIONFAILED" in shown["last_error"]
    )

    [event] = await events(room.database, "inbox.disconnected")
    assert event.workspace_id == workspace.workspace_id and event.livemode is True
    assert set(event.data) == {"inbox_id", "email", "side", "detail"}
    assert (event.data["inbox_id"], event.data["email"], event.data["side"]) == (
        inbox_id,
        room.inbox_email,
        "imap",
    )
    assert event.data["detail"] == shown["last_error"]

    # Disconnected: not read any more, so not counted and not announced again.
    room.later(24 * 3600)
    assert await read_inboxes(room.context()) == 0
    assert (await view(client, workspace, inbox_id))["read_failures"] == LIMIT
    assert len(await events(room.database, "inbox.disconnected")) == 1

    async with httpx.AsyncClient(timeout=10.0) as http:
        sender = WorkerContext(settings, database, None, http, "webhook-test")
        while await deliver_webhooks(sender):
            pass
    [delivery] = receiver.requests
    body = json.loads(delivery.body)
    assert (body["id"], body["type"], body["data"]) == (event.id, "inbox.disconnected", event.data)


async def test_a_read_that_works_in_between_starts_the_count_again(
    make_mailroom, make_dovecot, client, workspace
):
    private = make_dovecot()
    room: Mailroom = await make_mailroom(private)
    inbox_id = room.outreach.inbox_id
    ctx = room.context()

    private.stop()
    for _ in range(LIMIT - 1):
        await read_when_due(room, ctx)
    assert (await view(client, workspace, inbox_id))["read_failures"] == LIMIT - 1

    private.start()
    lead = room.outreach.leads[0]
    room.reply_from(lead)
    assert await read_when_due(room, ctx) == 1
    shown = await view(client, workspace, inbox_id)
    assert (shown["read_failures"], shown["last_read_error"], shown["last_read_error_at"]) == (0, None, None)
    assert len(await events(room.database, "reply.received")) == 1

    private.stop()
    for _ in range(LIMIT - 1):
        await read_when_due(room, ctx)
    shown = await view(client, workspace, inbox_id)
    assert shown["status"] == "connected" and shown["read_failures"] == LIMIT - 1
    await read_when_due(room, ctx)
    assert (await view(client, workspace, inbox_id))["status"] == "disconnected"
    assert len(await events(room.database, "inbox.disconnected")) == 1


async def test_a_mailbox_the_server_will_not_open_stays_disconnected_until_reconnected(
    make_mailroom,
    make_smtp_server,
    client,
    workspace,
):
    """The login works, EXAMINE INBOX is refused: the scheduled login check cannot tell, so only a reconnect
    (which forgets the failures) lets the reader try again."""
    email = unique("sender", "acme.test")
    smtp = make_smtp_server("none")
    smtp.add_user(email, "smtp-secret")
    room: Mailroom = await make_mailroom(inbox_email=email, smtp_port=smtp.port)
    inbox_id = room.outreach.inbox_id
    room.deliver(newsletter(email))
    ctx = room.context()
    assert await room.read(ctx) == 1

    maildir = room.server.mail_dir / email
    maildir.chmod(0o000)  # Dovecot may no longer open the mailbox: it answers NO [SERVERBUG] to EXAMINE
    try:
        for _ in range(LIMIT):
            await read_when_due(room, ctx)
        shown = await view(client, workspace, inbox_id)
        assert shown["status"] == "disconnected" and shown["read_failures"] == LIMIT
        assert "refused EXAMINE" in shown["last_read_error"] and "SERVERBUG" in shown["last_read_error"]
        [event] = await events(room.database, "inbox.disconnected")
        assert "refused EXAMINE" in event.data["detail"] and "SERVERBUG" in event.data["detail"]

        # The monitor's scheduled login check succeeds, yet leaves it disconnected: reading is what fails.
        monitor = room.context()
        assert (
            await check_due_inboxes(
                monitor, room.now + timedelta(seconds=room.settings.inbox_check_interval + 1)
            )
            == 1
        )
        assert (await view(client, workspace, inbox_id))["status"] == "disconnected"
        assert await events(room.database, "inbox.reconnected") == []
    finally:
        os.chmod(maildir, 0o755)

    reconnected = await client.post(f"/v1/inboxes/{inbox_id}/reconnect", headers=workspace.headers())
    assert reconnected.status_code == 200, reconnected.text
    shown = reconnected.json()
    assert shown["status"] == "connected" and shown["last_error"] is None
    assert (shown["read_failures"], shown["last_read_error"], shown["last_read_error_at"]) == (0, None, None)
    assert len(await events(room.database, "inbox.reconnected")) == 1

    lead = room.outreach.leads[0]
    room.deliver(reply(lead.header, from_email=lead.email, to_email=email))
    assert await read_when_due(room, ctx) == 1
    assert len(await replies(room.database)) == 1
    assert (await view(client, workspace, inbox_id))["read_failures"] == 0


async def test_a_crash_of_imail_is_logged_with_its_traceback_once_and_counts_towards_the_limit(
    make_mailroom, monkeypatch, client, workspace
):
    room: Mailroom = await make_mailroom()
    inbox_id = room.outreach.inbox_id

    async def broken(*args, **kwargs):  # stands in for a bug of ours; the server and the client stay real
        raise RuntimeError("cursor arithmetic went wrong: internal-detail-42")

    monkeypatch.setattr(reader, "sync_folder", broken)
    first = room.context()
    with capture_logs() as logs:
        for ctx in (first, room.context(), first):  # another worker in between knows the crash was logged too
            await read_when_due(room, ctx)
    crashes = [entry for entry in logs if entry["event"].startswith("inbox read crashed")]
    assert [entry["event"] for entry in crashes] == [
        "inbox read crashed",
        *["inbox read crashed again (its traceback was logged before)"] * 2,
    ]
    assert isinstance(crashes[0]["exc_info"], RuntimeError)
    assert all("exc_info" not in entry for entry in crashes[1:])
    assert "internal-detail-42" in crashes[2]["error"]
    assert [entry["failures"] for entry in crashes] == [1, 2, 3]

    shown = await view(client, workspace, inbox_id)
    assert shown["status"] == "connected" and shown["read_failures"] == 3
    assert "internal error, RuntimeError" in shown["last_read_error"]
    assert "internal-detail-42" not in shown["last_read_error"]  # the error's own text stays in the log

    async def broken_elsewhere(*args, **kwargs):
        raise KeyError("folder")

    monkeypatch.setattr(reader, "sync_folder", broken_elsewhere)
    with capture_logs() as logs:
        await read_when_due(room, room.context())
    [crash] = [entry for entry in logs if entry["event"].startswith("inbox read crashed")]
    assert crash["event"] == "inbox read crashed" and isinstance(crash["exc_info"], KeyError)  # another error

    await read_when_due(room, room.context())
    shown = await view(client, workspace, inbox_id)
    assert shown["status"] == "disconnected" and "internal error, KeyError" in shown["last_error"]
    [event] = await events(room.database, "inbox.disconnected")
    assert event.data["side"] == "imap" and f"failed {LIMIT} times in a row" in event.data["detail"]


async def test_read_errors_are_not_visible_to_another_tenant(
    make_mailroom, make_dovecot, client, workspace, other_workspace
):
    private = make_dovecot()
    room: Mailroom = await make_mailroom(private)
    private.stop()
    await read_when_due(room, room.context())
    inbox_id = room.outreach.inbox_id
    assert (await view(client, workspace, inbox_id))["last_read_error"] is not None

    for headers in (other_workspace.headers(), workspace.headers(live=False)):
        response = await client.get(f"/v1/inboxes/{inbox_id}", headers=headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        listed = await client.get("/v1/inboxes", headers=headers)
        assert listed.status_code == 200 and listed.json()["data"] == []
        assert (await client.post(f"/v1/inboxes/{inbox_id}/reconnect", headers=headers)).status_code == 404
    assert (await view(client, workspace, inbox_id))["read_failures"] == 1  # their reconnect cleared nothing
