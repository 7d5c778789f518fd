"""Issue 26, item 5: IMAP servers that differ, each a Dovecot configured as that server (one per variant, for
the module): no MOVE (and no UIDPLUS), no IDLE, Gmail's `[Gmail]/…` folders with special-use flags, a Courier
or cPanel style `INBOX.` namespace without them, and a UIDVALIDITY change under a reader that has a cursor."""

from __future__ import annotations

import ast
import logging
import shutil
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from imail.mail import imap
from imail.mail.endpoint import Endpoint
from imail.mail.mime import make_message_id
from imail.models import InboundReceipt, Inbox
from imail.models.warmup import WarmupMessage
from imail.warmup import content as warmup_content
from imail.workers.imap_reader import inbound_pool
from tests.fixtures.imap import DovecotServer, quoted
from tests.fixtures.imap_variants import VARIANTS, make_folders, variant_server  # noqa: F401
from tests.fixtures.inbound import make_outreach, newsletter, reply
from tests.intake.conftest import Mailroom, count, cursors, events, poll, replies, row


async def variant_room(make_mailroom, variant_server, name: str, **kwargs) -> Mailroom:
    room: Mailroom = await make_mailroom(variant_server(name), **kwargs)
    make_folders(room.server, room.inbox_email, name)
    return room


def folder_contents(room: Mailroom, folder: str) -> dict[str, bytes]:
    """Message-ID → FLAGS of every message in one of the inbox's folders."""
    client = room.imap()
    try:
        assert client.select(quoted(folder), readonly=True)[0] == "OK"
        _, data = client.uid("fetch", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found = {}
        for part in data:
            if isinstance(part, tuple):
                header = part[1].decode().split(":", 1)[1].strip()
                found[header] = part[0]
        return found
    finally:
        client.logout()


def commands(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The IMAP commands imail sent, untagged, as aioimaplib logged them (`Sending : b'ABCD3 NOOP\\r\\n'`)."""
    sent = []
    for record in caplog.records:
        text = record.getMessage()
        if record.name == "aioimaplib.aioimaplib" and text.startswith("Sending : b"):
            line = ast.literal_eval(text.removeprefix("Sending : ")).decode().strip()
            sent.append(line.split(" ", 1)[1])
    return sent


def capability(room: Mailroom, ctx, name: str) -> bool:
    """Whether the reader's own connection was offered `name`."""
    return inbound_pool(ctx).connections[room.outreach.inbox_id].client.has_capability(name)


# --- moving out of spam -----------------------------------------------------------------------------------


async def pool_email_to(room: Mailroom, database) -> bytes:
    """A warmup email another inbox of the pool sent to this one, as its sender recorded it."""
    sender = await make_outreach(database, room.settings, room.outreach.workspace_id)
    header = make_message_id("pool.test")
    async with database.transaction() as session:
        (await session.get(Inbox, sender.inbox_id)).status = "disconnected"  # only this inbox is read
        session.add(
            WarmupMessage(
                workspace_id=room.outreach.workspace_id,
                livemode=True,
                inbox_id=sender.inbox_id,
                recipient_inbox_id=room.outreach.inbox_id,
                from_email=sender.inbox_email,
                to_email=room.inbox_email,
                kind="first",
                subject="Quick sync this week?",
                message_id_header=header,
                status="sent",
                day=room.now.date(),
                created_at=room.now,
                sent_at=room.now,
            )
        )
    return reply(
        None,
        from_email=sender.inbox_email,
        to_email=room.inbox_email,
        subject="Quick sync this week?",
        message_id=header,
        headers={warmup_content.HEADER: warmup_content.marker(room.settings)},
    )


@pytest.mark.parametrize("name", ["no-move", "no-move-no-uidplus", "gmail", "inbox-prefix"])
async def test_warmup_mail_is_moved_out_of_spam_and_nothing_else(
    make_mailroom, variant_server, database, name, caplog
):
    caplog.set_level(logging.DEBUG, logger="aioimaplib.aioimaplib")
    room = await variant_room(make_mailroom, variant_server, name)
    spam = VARIANTS[name].spam
    warm = await pool_email_to(room, database)
    before, after = newsletter(room.inbox_email), newsletter(room.inbox_email)
    for message in (before, warm, after):  # UIDs 1, 2, 3: the one moved sits between two that stay
        room.deliver(message, spam)
    ctx = room.context()

    await room.read(ctx)

    moving = [c for c in commands(caplog) if c.startswith(("UID MOVE", "UID COPY", "UID EXPUNGE", "EXPUNGE"))]
    assert moving == {
        "no-move": ['UID COPY 2 "INBOX"', "UID EXPUNGE 2"],
        "no-move-no-uidplus": ['UID COPY 2 "INBOX"', "EXPUNGE"],
    }.get(name, ['UID MOVE 2 "INBOX"'])
    [placed] = await warmup_rows(database)
    header = placed.message_id_header
    left = folder_contents(room, spam)
    assert set(left) == {_message_id(before), _message_id(after)}  # out of spam, the others still there …
    assert all(b"\\Deleted" not in flags and b"\\Seen" not in flags for flags in left.values())  # … untouched
    in_inbox = folder_contents(room, "INBOX")
    assert list(in_inbox) == [header]  # … and in INBOX, once, read and important
    assert b"\\Seen" in in_inbox[header] and b"\\Flagged" in in_inbox[header]
    assert [m.placement for m in await warmup_rows(database)] == ["spam"]  # counted where it landed
    assert await count(database, InboundReceipt) == 0  # warmup mail is never a reply


async def warmup_rows(database) -> list[WarmupMessage]:
    async with database.transaction() as session:
        # the pool's email, not the answer this inbox may have queued to it
        stmt = select(WarmupMessage).where(WarmupMessage.kind == "first")
        return list((await session.execute(stmt)).scalars())


def _message_id(raw: bytes) -> str:
    [line] = [line for line in raw.decode().split("\r\n") if line.startswith("Message-ID:")]
    return line.split(":", 1)[1].strip()


# --- folders ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gmail", "inbox-prefix"])
async def test_replies_in_the_spam_folder_are_read_there(make_mailroom, variant_server, name):
    room = await variant_room(make_mailroom, variant_server, name, leads=2)
    spam = VARIANTS[name].spam
    first, second = room.outreach.leads
    room.reply_from(first)
    room.deliver(reply(second.header, from_email=second.email, to_email=room.inbox_email), spam)

    assert await room.read(room.context()) == 2

    assert {(r.lead_id, r.folder) for r in await replies(room.database)} == {
        (first.lead_id, "INBOX"),
        (second.lead_id, spam),
    }
    assert set(await cursors(room.database, room.outreach.inbox_id)) == {"INBOX", spam}


async def test_gmail_all_mail_is_not_read_as_more_replies(make_mailroom, variant_server):
    """Gmail shows every message in `[Gmail]/All Mail` too (the replies in INBOX and Spam, the emails sent):
    the reader reads INBOX and the `\\Junk` folder only, so each reply is one reply."""
    room = await variant_room(make_mailroom, variant_server, "gmail", leads=2)
    first, second = room.outreach.leads
    in_inbox = reply(first.header, from_email=first.email, to_email=room.inbox_email)
    in_spam = reply(second.header, from_email=second.email, to_email=room.inbox_email)
    room.deliver(in_inbox)
    room.deliver(in_spam, "[Gmail]/Spam")
    for message in (in_inbox, in_spam, newsletter(room.inbox_email)):
        room.deliver(message, "[Gmail]/All Mail")

    assert await room.read(room.context()) == 2

    assert len(await events(room.database, "reply.received")) == 2
    assert await count(room.database, InboundReceipt) == 2
    assert "[Gmail]/All Mail" not in await cursors(room.database, room.outreach.inbox_id)


# --- the Sent folder --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gmail", "inbox-prefix", "no-move"])
async def test_what_was_sent_is_appended_to_the_sent_folder_and_found_there(
    make_mailroom, variant_server, name
):
    room = await variant_room(make_mailroom, variant_server, name)
    server = room.server
    endpoint = Endpoint(server.host, server.port, "starttls", room.inbox_email, room.outreach.imap_password)
    options = {
        "timeout": room.settings.mail_timeout,
        "ca_file": room.settings.mail_ca_file,
        "allow_private": room.settings.mail_allow_private,
    }
    lead = room.outreach.leads[0]
    sent = [
        reply(None, from_email=room.inbox_email, to_email=lead.email, subject=f"Step {n}") for n in (1, 2)
    ]

    # One at a time, as sends go out: the second finds the folder the first made, where one was made.
    assert await imap.append_to_sent(endpoint, sent[:1], **options) == VARIANTS[name].sent
    assert await imap.append_to_sent(endpoint, sent[1:], **options) == VARIANTS[name].sent

    filed = folder_contents(room, VARIANTS[name].sent)
    assert list(filed) == [_message_id(m) for m in sent]
    assert all(b"\\Seen" in flags for flags in filed.values())
    assert server.fetch_all(room.inbox_email, VARIANTS[name].sent) == sent  # the exact bytes
    headers = [_message_id(m) for m in sent]
    unsent = make_message_id("acme.test")
    assert await imap.find_in_sent(endpoint, [*headers, unsent], **options) == set(headers)


# --- no IDLE ----------------------------------------------------------------------------------------------


async def test_without_idle_offered_replies_are_found_by_polling(make_mailroom, variant_server):
    room = await variant_room(make_mailroom, variant_server, "no-idle")
    lead = room.outreach.leads[0]
    ctx = room.context()  # IDLE wanted (the default): the server does not offer it
    assert ctx.settings.inbound_idle is True

    assert await room.read(ctx) == 0
    assert capability(room, ctx, "IDLE") is False
    state = await poll(room.database, room.outreach.inbox_id)
    interval = timedelta(seconds=ctx.settings.inbound_poll_interval)
    assert state.idle is False and state.next_poll_at == room.now + interval

    room.reply_from(lead)
    assert await room.read(ctx) == 0  # nothing tells the reader: it waits for its turn
    room.later(interval.total_seconds())
    assert await room.read(ctx) == 1
    assert len(await events(room.database, "reply.received")) == 1
    assert inbound_pool(ctx).opened == 1


# --- UIDVALIDITY ------------------------------------------------------------------------------------------


def set_uidvalidity(server: DovecotServer, username: str, folder: str, value: int) -> None:
    """What a server migration or a rebuilt index does to a folder that cannot be deleted (INBOX): the same
    messages under a new UIDVALIDITY (doveadm, on the running Dovecot's own configuration)."""
    doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
    subprocess.run(
        [
            doveadm,
            "-c",
            str(server.config_file),
            "mailbox",
            "update",
            "-u",
            username,
            "--uid-validity",
            str(value),
            folder,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


async def test_a_new_inbox_uidvalidity_rereads_nothing_twice_and_misses_nothing(
    make_mailroom, variant_server
):
    room = await variant_room(make_mailroom, variant_server, "doveadm", leads=2)
    first, second = room.outreach.leads
    room.reply_from(first)
    ctx = room.context()  # IDLE-ing on INBOX when the change comes
    assert await room.read(ctx) == 1
    before = (await cursors(room.database, room.outreach.inbox_id))["INBOX"]

    set_uidvalidity(room.server, room.inbox_email, "INBOX", before.uidvalidity + 7)
    room.reply_from(second)
    room.later(room.settings.inbound_idle_recheck + 1)
    assert await room.read(ctx) == 2  # the first one again (read by date), and the new one

    after = (await cursors(room.database, room.outreach.inbox_id))["INBOX"]
    assert after.uidvalidity == before.uidvalidity + 7
    received = await events(room.database, "reply.received")
    assert sorted(e.data["lead_id"] for e in received) == sorted([first.lead_id, second.lead_id])
    assert len(await replies(room.database)) == 2
    assert (await row(room.database, Inbox, room.outreach.inbox_id)).status == "connected"


def test_folders_are_found_by_flag_then_by_name_as_listed_or_below_inbox():
    listing = [
        b'(\\HasNoChildren) "." INBOX.Archive',
        b'(\\HasNoChildren) "." "INBOX.Sent Items"',
        b'(\\HasNoChildren) "." INBOX.spam',
        b'(\\HasNoChildren) "/" Clients/Sent',  # a user's own folder, not below INBOX
        b'(\\Noselect \\HasChildren) "/" "[Gmail]"',
        b'(\\HasNoChildren \\Sent) "/" "[Google Mail]/Gesendet"',
        b"OK LIST completed",
    ]
    assert imap.sent_folders(listing) == ["[Google Mail]/Gesendet", "INBOX.Sent Items"]
    assert imap.junk_folders(listing) == ["INBOX.spam"]
