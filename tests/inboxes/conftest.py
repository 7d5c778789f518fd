"""Inbox fixtures: a real SMTP server (aiosmtpd with AUTH) and a real IMAP server (Dovecot) on loopback,
spoken to in the test's security mode (tests.fixtures.security: STARTTLS unless `@each_security`), settings
that trust their test CA, a mailbox account on both, and helpers to read the inboxes table directly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from imail.config import Settings
from imail.db import Database
from imail.models import Event, Inbox
from imail.workers.context import WorkerContext
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair
from tests.fixtures.imap import DovecotServer, dovecot, dovecot_session, make_dovecot  # noqa: F401
from tests.fixtures.oauth import oauth_provider  # noqa: F401
from tests.fixtures.smtp import SmtpServer, make_smtp_server, smtp_server, tls_cert  # noqa: F401


@pytest.fixture
def settings(database_url: str, tls_cert: CertPair) -> Settings:  # noqa: F811
    return make_settings(database_url, mail_ca_file=str(tls_cert.ca_file), mail_timeout=5.0)


@dataclass
class Mailbox:
    """One account that exists on both test servers."""

    email: str
    smtp: SmtpServer
    imap: DovecotServer
    smtp_password: str
    imap_password: str
    imap_security: str = "starttls"

    def body(self, **overrides: Any) -> dict[str, Any]:
        """A POST /v1/inboxes body for this account: SMTP as its server speaks, IMAP in `imap_security`."""
        body: dict[str, Any] = {
            "email": self.email,
            "name": "Ana Lima",
            "smtp_host": "127.0.0.1",
            "smtp_port": self.smtp.port,
            "smtp_security": self.smtp.security,
            "smtp_password": self.smtp_password,
            "imap_host": "127.0.0.1",
            "imap_port": self.imap.port_for(self.imap_security),
            "imap_security": self.imap_security,
            "imap_password": self.imap_password,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}


def unique_email(prefix: str = "ana") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def make_mailbox(
    smtp_server: SmtpServer,
    dovecot: DovecotServer,  # noqa: F811
    security: str,
) -> Callable[..., Mailbox]:
    """Accounts on both servers, read over IMAP in the test's security mode (STARTTLS unless
    `@each_security`)."""

    def make(
        prefix: str = "ana", smtp: SmtpServer | None = None, imap: DovecotServer | None = None
    ) -> Mailbox:
        email = unique_email(prefix)
        box = Mailbox(
            email,
            smtp or smtp_server,
            imap or dovecot,
            f"smtp-{uuid.uuid4().hex[:8]}",
            f"imap-{uuid.uuid4().hex[:8]}",
            imap_security=security,
        )
        box.smtp.add_user(email, box.smtp_password)
        box.imap.add_user(email, box.imap_password)
        return box

    return make


@pytest.fixture
def mailbox(make_mailbox: Callable[..., Mailbox]) -> Mailbox:
    return make_mailbox()


async def inbox_rows(database: Database) -> list[dict[str, Any]]:
    """The inboxes table as stored, read with plain SQL (no ORM, no decryption)."""
    async with database.engine.connect() as conn:
        result = await conn.execute(text("SELECT * FROM inboxes ORDER BY id"))
        return [dict(row._mapping) for row in result]


async def events_of(database: Database, event_type: str, inbox_id: str | None = None) -> list[Event]:
    async with database.transaction() as session:
        rows = list(
            (
                await session.execute(select(Event).where(Event.type == event_type).order_by(Event.id))
            ).scalars()
        )
    return [e for e in rows if inbox_id is None or e.data.get("inbox_id") == inbox_id]


async def load_inbox(database: Database, inbox_id: str) -> Inbox:
    async with database.transaction() as session:
        inbox = await session.get(Inbox, inbox_id)
        assert inbox is not None
        return inbox


@pytest.fixture
async def worker_context(
    settings: Settings, database: Database
) -> AsyncIterator[Callable[..., WorkerContext]]:
    """make(**setting_overrides) -> a WorkerContext like the runner's, with its own HTTP client."""
    clients: list[httpx.AsyncClient] = []

    def make(**overrides: Any) -> WorkerContext:
        http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        clients.append(http)
        return WorkerContext(
            settings.model_copy(update=overrides), database, None, http, f"inbox-test-{len(clients)}"
        )

    yield make
    for http in clients:
        await http.aclose()
