"""The connection monitor: real servers going down and up, one event per transition, driven by an injected
clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from imail.inboxes import monitor
from imail.inboxes.monitor import check_due_inboxes, report_connection_failure
from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.mail.endpoint import MailConnectionError
from imail.workers import inbox_connections
from imail.workers.registry import WORKERS
from tests.inboxes.conftest import Mailbox, events_of, load_inbox, unique_email


async def connect(client, workspace, mailbox: Mailbox) -> dict:
    response = await client.post("/v1/inboxes", json=mailbox.body(), headers=workspace.headers())
    assert response.status_code == 201, response.text
    return response.json()


def test_the_monitor_is_a_registered_worker():
    assert any(spec.run is inbox_connections.monitor_inbox_connections for spec in WORKERS)


async def test_stopping_smtp_disconnects_once_and_restarting_reconnects_once(
    client, workspace, mailbox: Mailbox, database, worker_context
):
    inbox = await connect(client, workspace, mailbox)
    ctx = worker_context()
    step = timedelta(seconds=ctx.settings.inbox_check_interval + 1)
    now = utcnow()

    # Just connected: not due yet.
    assert await check_due_inboxes(ctx, now) == 0

    mailbox.smtp.stop()
    for i in range(1, 4):  # three checks while it is down
        assert await check_due_inboxes(ctx, now + i * step) == 1
        assert (await load_inbox(database, inbox["id"])).status == "disconnected"
    [event] = await events_of(database, "inbox.disconnected", inbox["id"])
    assert event.data["side"] == "smtp" and event.data["email"] == mailbox.email
    assert "could not be reached" in event.data["detail"]
    assert event.livemode is True and event.workspace_id == workspace.workspace_id
    assert await events_of(database, "inbox.reconnected") == []

    mailbox.smtp.start()
    for i in range(4, 7):  # three checks while it is up again
        assert await check_due_inboxes(ctx, now + i * step) == 1
    stored = await load_inbox(database, inbox["id"])
    assert stored.status == "connected" and stored.last_error is None
    assert len(await events_of(database, "inbox.disconnected", inbox["id"])) == 1
    assert len(await events_of(database, "inbox.reconnected", inbox["id"])) == 1

    api = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert api["status"] == "connected"


async def test_stopping_imap_is_reported_as_the_imap_side(
    client, workspace, make_mailbox, make_dovecot, database, worker_context
):
    private = make_dovecot()
    mailbox = make_mailbox(imap=private)
    inbox = await connect(client, workspace, mailbox)
    ctx = worker_context()
    later = utcnow() + timedelta(seconds=ctx.settings.inbox_check_interval + 1)
    private.stop()
    assert await check_due_inboxes(ctx, later) == 1
    [event] = await events_of(database, "inbox.disconnected", inbox["id"])
    assert event.data["side"] == "imap"
    private.start()
    assert await check_due_inboxes(ctx, later + timedelta(seconds=ctx.settings.inbox_check_interval + 1)) == 1
    assert len(await events_of(database, "inbox.reconnected", inbox["id"])) == 1


async def test_a_changed_password_on_the_server_disconnects_with_its_words(
    client, workspace, mailbox: Mailbox, database, worker_context
):
    inbox = await connect(client, workspace, mailbox)
    mailbox.smtp.add_user(mailbox.email, "changed-by-the-admin")
    ctx = worker_context()
    await check_due_inboxes(ctx, utcnow() + timedelta(seconds=ctx.settings.inbox_check_interval + 1))
    stored = await load_inbox(database, inbox["id"])
    assert stored.status == "disconnected" and stored.last_error_side == "smtp"
    assert "535 5.7.8" in stored.last_error


async def test_a_reported_failure_makes_the_inbox_due_at_once(
    client, workspace, mailbox: Mailbox, database, worker_context
):
    inbox = await connect(client, workspace, mailbox)
    ctx = worker_context()
    now = utcnow()
    assert await check_due_inboxes(ctx, now) == 0  # checked on connect: not due

    # A send fails: the sender reports it; the monitor checks at once (no interval to wait for).
    async with database.transaction() as session:
        await report_connection_failure(
            session,
            Tenant(workspace.workspace_id, True),
            inbox["id"],
            "smtp",
            "SMTP server went away during DATA",
        )
    stored = await load_inbox(database, inbox["id"])
    assert stored.status == "connected" and stored.last_error == "SMTP server went away during DATA"

    # The server is fine after all (a transient failure): still connected, no event, error cleared.
    assert await check_due_inboxes(ctx, now) == 1
    stored = await load_inbox(database, inbox["id"])
    assert stored.status == "connected" and stored.last_error is None
    assert await events_of(database, "inbox.disconnected") == []

    # A real outage: the report plus the immediate check flip it.
    mailbox.smtp.stop()
    async with database.transaction() as session:
        await report_connection_failure(
            session, Tenant(workspace.workspace_id, True), inbox["id"], "smtp", "refused"
        )
    assert await check_due_inboxes(ctx, now) == 1
    assert (await load_inbox(database, inbox["id"])).status == "disconnected"
    assert len(await events_of(database, "inbox.disconnected", inbox["id"])) == 1


async def test_racing_monitors_record_one_event(
    client, workspace, mailbox: Mailbox, database, worker_context
):
    inbox = await connect(client, workspace, mailbox)
    mailbox.smtp.stop()
    later = utcnow() + timedelta(seconds=3600)
    checked = await asyncio.gather(*(check_due_inboxes(worker_context(), later) for _ in range(4)))
    assert sum(checked) == 1  # one claim wins; the others find nothing due
    # Even when two checks both decide "down", only one transition happens.
    stored = await load_inbox(database, inbox["id"])
    async with database.transaction() as session:
        results = [await monitor.mark_failed(session, stored, "smtp", "down", later) for _ in range(3)]
    assert results == [False, False, False]  # already disconnected
    assert len(await events_of(database, "inbox.disconnected", inbox["id"])) == 1


async def test_test_mode_and_pending_inboxes_are_never_checked(client, workspace, database, worker_context):
    body = {
        "email": unique_email(),
        "smtp_host": "smtp.example.invalid",
        "smtp_password": "a",
        "imap_host": "imap.example.invalid",
        "imap_password": "b",
    }
    created = await client.post("/v1/inboxes", json=body, headers=workspace.headers(live=False))
    assert created.status_code == 201
    ctx = worker_context()
    assert await check_due_inboxes(ctx, utcnow() + timedelta(days=1)) == 0
    assert (await load_inbox(database, created.json()["id"])).status == "connected"


async def test_a_check_made_with_old_credentials_does_not_override_new_ones(
    client, workspace, mailbox: Mailbox, database, settings
):
    inbox = await connect(client, workspace, mailbox)
    stale = await load_inbox(database, inbox["id"])
    mailbox.smtp.add_user(mailbox.email, "new-password")
    patched = await client.patch(
        f"/v1/inboxes/{inbox['id']}", json={"smtp_password": "new-password"}, headers=workspace.headers()
    )
    assert patched.status_code == 200
    outcome = monitor.CheckOutcome(failures=[MailConnectionError("smtp", "auth", None, "535 old password")])
    async with database.transaction() as session:
        applied = await monitor.apply_outcome(session, stale, outcome, settings, utcnow())
    assert applied is False
    assert (await load_inbox(database, inbox["id"])).status == "connected"
