"""Warmup fixtures: real mailboxes (aiosmtpd for SMTP, Dovecot for IMAP, each with a Junk folder), a router
that files what the SMTP server accepts into the recipient's INBOX or Junk (as a provider's spam filter
would), inboxes connected and warmed through the API, and the warmup, inbound and sending workers driven by
one test clock."""

from __future__ import annotations

import imaplib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import parseaddr
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from imail.config import Settings
from imail.db import Database
from imail.warmup.content import HEADER
from imail.workers import imap_reader as inbound_worker
from imail.workers import sending as sending_worker
from imail.workers import warmup as warmup_worker
from imail.workers.context import WorkerContext
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair
from tests.fixtures.imap import DovecotServer, dovecot, dovecot_session  # noqa: F401
from tests.fixtures.smtp import ReceivedMessage, SmtpServer, smtp_server, tls_cert  # noqa: F401
from tests.inboxes.conftest import Mailbox, make_mailbox  # noqa: F401
from tests.sending.conftest import Clock as SendingClock

THURSDAY = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
SECRET = "warmup-test-marker-0001"


@pytest.fixture
def settings(database_url: str, tls_cert: CertPair) -> Settings:  # noqa: F811
    # IDLE off: the reader polls, so reads happen exactly when a test runs the inbound worker.
    return make_settings(
        database_url,
        mail_ca_file=str(tls_cert.ca_file),
        mail_timeout=5.0,
        inbound_idle=False,
        inbound_poll_interval=1.0,
        warmup_marker=SECRET,
        warmup_tag="WTAG42",
        warmup_window="08:00-18:00",
        warmup_reply_delay=600.0,
    )


@dataclass
class Clock(SendingClock):
    """The sending tests' driven clock, starting on a Thursday, with whole-day moves."""

    now: datetime = THURSDAY

    def at(self, day_offset: int, hour: int, minute: int = 0) -> None:
        """Move to hour:minute (UTC) of THURSDAY + day_offset; never backwards."""
        moment = THURSDAY + timedelta(days=day_offset, hours=hour, minutes=minute)
        assert moment >= self.now, "the clock only moves forward"
        self.now = moment


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock()
    # The API stamps warmup starts and enrols leads, and events are stamped (and counted per day), with the
    # wall clock: pin them to the test's clock.
    monkeypatch.setattr("imail.inboxes.service.utcnow", made)
    monkeypatch.setattr("imail.sending.service.utcnow", made)
    monkeypatch.setattr("imail.events.service.utcnow", made)
    return made


class Router:
    """Files each accepted message into its recipient's Dovecot mailbox: into Junk for recipients in `junk`,
    else INBOX — and keeps every accepted message, with the test clock's time, for the assertions."""

    def __init__(self, imap: DovecotServer, clock: Clock):
        self.imap = imap
        self.clock = clock
        self.junk: set[str] = set()
        self.lock = threading.Lock()
        self.clients: dict[str, imaplib.IMAP4] = {}
        self.accepted: list[tuple[datetime, ReceivedMessage]] = []

    def __call__(self, received: ReceivedMessage) -> None:
        with self.lock:
            self.accepted.append((self.clock.now, received))
            for recipient in received.envelope_to:
                if recipient not in self.imap.passwords:
                    continue
                client = self.clients.get(recipient)
                if client is None:
                    client = self.clients[recipient] = self.imap.login(recipient)
                folder = "Junk" if recipient in self.junk else "INBOX"
                status, detail = client.append(folder, None, None, received.data)
                assert status == "OK", detail

    def warmup(self, sender: str | None = None) -> list[tuple[datetime, ReceivedMessage]]:
        with self.lock:
            return [
                (at, m)
                for at, m in self.accepted
                if m.message.get(HEADER) and (sender is None or m.envelope_from == sender)
            ]

    def close(self) -> None:
        for client in self.clients.values():
            try:
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                pass


@dataclass
class Pool:
    """Drives the API and the workers of one test."""

    client: httpx.AsyncClient
    database: Database
    settings: Settings
    clock: Clock
    router: Router
    imap: DovecotServer
    headers: dict[str, str]
    ctx: WorkerContext
    make_mailbox: Callable[..., Mailbox]
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)  # by inbox id

    async def inbox(self, warmup: dict[str, Any] | None = None, start: bool = True, **overrides: Any) -> str:
        """A mailbox on both servers (with a Junk folder), connected through the API, warmup started with
        `warmup`."""
        box = self.make_mailbox("warm")
        client = self.imap.login(box.email)
        client.create("Junk")
        client.logout()
        body = {**box.body(), "sending_gap_minutes": 0, "daily_limit": 100, **overrides}
        response = await self.client.post("/v1/inboxes", headers=self.headers, json=body)
        assert response.status_code == 201, response.text
        inbox_id = response.json()["id"]
        self.mailboxes[inbox_id] = box
        if start:
            started = await self.client.post(
                f"/v1/inboxes/{inbox_id}/warmup/start", headers=self.headers, json=warmup or {}
            )
            assert started.status_code == 200, started.text
        return inbox_id

    def email(self, inbox_id: str) -> str:
        return self.mailboxes[inbox_id].email

    async def get(self, inbox_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/inboxes/{inbox_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def send(self, rounds: int = 500) -> int:
        """Run the warmup worker until nothing is due now; how many iterations found work."""
        for busy in range(rounds):
            if not await warmup_worker.send_warmup(self.ctx):
                return busy
        raise AssertionError("the warmup worker never went idle")

    async def read(self) -> int:
        """Read every inbox now (the inbound worker until idle); the clock moves past the poll interval
        first."""
        self.clock.advance(seconds=2)
        total = 0
        for _ in range(50):
            done = await inbound_worker.read_inboxes(self.ctx)
            total += done
            if not done:
                return total
        raise AssertionError("the reader kept finding work")

    async def campaign_sends(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            if not await sending_worker.send_due(self.ctx):
                return
        raise AssertionError("the sending worker never went idle")

    def folder(self, inbox_id: str, folder: str) -> list[tuple[bytes, bytes]]:
        """(flags, raw message) of every message in one of the inbox's folders."""
        box = self.mailboxes[inbox_id]
        client = self.imap.login(box.email)
        try:
            status, _ = client.select(folder, readonly=True)
            assert status == "OK"
            _, data = client.uid("search", None, "ALL")
            found = []
            for uid in data[0].split():
                _, parts = client.uid("fetch", uid, "(FLAGS BODY.PEEK[])")
                found.append((parts[0][0], bytes(parts[0][1])))
            return found
        finally:
            client.logout()

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.database.transaction() as session:
            return list((await session.execute(select(model).where(*where))).scalars())

    async def count(self, model: Any, *where: Any) -> int:
        async with self.database.transaction() as session:
            return (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


def sender_of(received: ReceivedMessage) -> str:
    return parseaddr(message_from_bytes(received.data).get("From", ""))[1]


@pytest.fixture
async def pool(
    client,
    database,
    settings,
    workspace,
    clock,
    smtp_server,
    dovecot,
    make_mailbox,  # noqa: F811
) -> AsyncIterator[Pool]:
    router = Router(dovecot, clock)
    smtp_server.on_accept = router
    async with httpx.AsyncClient(timeout=10.0) as http:
        ctx = WorkerContext(settings, database, None, http, "warmup-test", clock=clock)
        yield Pool(client, database, settings, clock, router, dovecot, workspace.headers(), ctx, make_mailbox)
        await sending_worker.smtp_pool(ctx).close()
        await inbound_worker.inbound_pool(ctx).close()
    smtp_server.on_accept = None
    router.close()
