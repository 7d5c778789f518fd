"""Sending fixtures: a real SMTP sink (aiosmtpd) that files what it accepts into the sender's Dovecot Sent
folder, as Gmail does; inboxes connected through the API; a clock the tests move instead of sleeping."""

from __future__ import annotations

import imaplib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from imail.config import Settings
from imail.db import Database
from imail.models import Event, Lead
from imail.models.sending import Message, SequenceState
from imail.workers import sending as sending_worker
from imail.workers.context import WorkerContext
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair
from tests.fixtures.imap import DovecotServer, dovecot, dovecot_session, make_dovecot  # noqa: F401
from tests.fixtures.smtp import SmtpServer, smtp_server, tls_cert  # noqa: F401
from tests.inboxes.conftest import Mailbox, mailbox, make_mailbox  # noqa: F401

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALL_DAY = {
    "timezone": "UTC",
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "00:00",
    "end": "24:00",
}


@pytest.fixture
def settings(database_url: str, tls_cert: CertPair) -> Settings:  # noqa: F811
    return make_settings(
        database_url,
        mail_ca_file=str(tls_cert.ca_file),
        mail_timeout=5.0,
        public_url="https://t.acme.test",
        sending_retry_seconds=60.0,
    )


@dataclass
class Clock:
    now: datetime = MONDAY_10_UTC

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


class SentFiler:
    """Files every accepted message into its sender's Sent folder over one IMAP connection per sender."""

    def __init__(self, imap: DovecotServer):
        self.imap = imap
        self.lock = threading.Lock()
        self.clients: dict[str, imaplib.IMAP4] = {}

    def __call__(self, received: Any) -> None:
        sender = received.envelope_from
        if sender not in self.imap.passwords:
            return
        with self.lock:
            client = self.clients.get(sender)
            if client is None:
                client = self.clients[sender] = self.imap.login(sender)
                client.create("Sent")
            client.append("Sent", "\\Seen", None, received.data)

    def close(self) -> None:
        for client in self.clients.values():
            try:
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                pass


@pytest.fixture
def sink(smtp_server: SmtpServer, dovecot: DovecotServer) -> Any:  # noqa: F811
    filer = SentFiler(dovecot)
    smtp_server.on_accept = filer
    yield smtp_server
    smtp_server.on_accept = None
    smtp_server.rcpt_hook = None
    filer.close()


@dataclass
class Outreach:
    """Drives the API and the sending worker of one test."""

    client: httpx.AsyncClient
    database: Database
    ctx: WorkerContext
    headers: dict[str, str]
    inbox_ids: list[str] = field(default_factory=list)

    async def connect_inbox(self, mailbox: Mailbox, **overrides: Any) -> str:
        body = {**mailbox.body(), "sending_gap_minutes": 0, "daily_limit": 500, **overrides}
        response = await self.client.post("/v1/inboxes", headers=self.headers, json=body)
        assert response.status_code == 201, response.text
        self.inbox_ids.append(response.json()["id"])
        return response.json()["id"]

    async def campaign(self, steps: list[dict], **overrides: Any) -> dict:
        body = {
            "name": "Q4 outbound",
            "inbox_ids": self.inbox_ids,
            "steps": steps,
            "send_window": ALL_DAY,
            **overrides,
        }
        created = await self.client.post("/v1/campaigns", headers=self.headers, json=body)
        assert created.status_code == 201, created.text
        return created.json()

    async def resume(self, campaign_id: str) -> None:
        response = await self.client.post(f"/v1/campaigns/{campaign_id}/resume", headers=self.headers)
        assert response.status_code == 200, response.text

    async def lead(self, campaign_id: str, email: str, **fields: Any) -> dict:
        response = await self.client.post(
            "/v1/leads", headers=self.headers, json={"campaign_id": campaign_id, "email": email, **fields}
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def drain(self, rounds: int = 20) -> int:
        """Run the sending worker until it finds nothing due; how many emails it claimed."""
        claimed = 0
        for _ in range(rounds):
            before = await self.count(Message)
            examined = await sending_worker.send_due(self.ctx)
            claimed += await self.count(Message) - before
            if not examined:
                return claimed
        raise AssertionError("the sending worker never went idle")

    async def count(self, model: Any) -> int:
        async with self.database.transaction() as session:
            return len(
                (
                    await session.execute(
                        select(model.__table__.c[list(model.__table__.primary_key.columns)[0].name])
                    )
                ).all()
            )

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.database.transaction() as session:
            return list((await session.execute(select(model).where(*where))).scalars())

    async def events(self, event_type: str) -> list[Event]:
        return await self.rows(Event, Event.type == event_type)

    async def state(self, lead_id: str) -> SequenceState:
        return (await self.rows(SequenceState, SequenceState.lead_id == lead_id))[0]

    async def lead_row(self, lead_id: str) -> Lead:
        return (await self.rows(Lead, Lead.id == lead_id))[0]


@pytest.fixture
async def outreach(client, database, settings, workspace, clock) -> AsyncIterator[Outreach]:
    async with httpx.AsyncClient(timeout=10.0) as http:
        ctx = WorkerContext(settings, database, None, http, "sending-test", clock=clock)
        yield Outreach(client, database, ctx, workspace.headers())
        await sending_worker.smtp_pool(ctx).close()


def freeze_api_clock(monkeypatch: pytest.MonkeyPatch, clock: Callable[[], datetime]) -> None:
    """Lead enrolment and the tracking routes read the wall clock; pin them to the test's clock."""
    monkeypatch.setattr("imail.sending.service.utcnow", clock)
    monkeypatch.setattr("imail.tracking.router.utcnow", clock)
