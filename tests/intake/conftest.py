"""Inbound fixtures: Dovecot on loopback, a sent campaign whose inbox reads from it, worker contexts driven by
an injected clock, and helpers that read back what the reader did."""

from __future__ import annotations

import imaplib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from imail.config import Settings
from imail.db import Database
from imail.kit.clock import utcnow
from imail.models import Event, InboundReceipt, Lead, Message, Reply, SequenceState, Suppression
from imail.models.mailbox_cursor import MailboxCursor, MailboxPoll
from imail.workers.context import WorkerContext
from imail.workers.imap_reader import inbound_pool, read_inboxes
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair
from tests.fixtures.imap import DovecotServer, dovecot, dovecot_session, make_dovecot  # noqa: F401
from tests.fixtures.inbound import Outreach, SentLead, make_outreach, reply
from tests.fixtures.smtp import tls_cert  # noqa: F401


@pytest.fixture
def settings(database_url: str, tls_cert: CertPair) -> Settings:  # noqa: F811
    return make_settings(database_url, mail_ca_file=str(tls_cert.ca_file), mail_timeout=5.0)


@dataclass
class Mailroom:
    """A sent campaign whose inbox is a Dovecot account, and the clock the workers see."""

    database: Database
    settings: Settings
    server: DovecotServer
    outreach: Outreach
    now: datetime
    contexts: list[WorkerContext]

    @property
    def inbox_email(self) -> str:
        return self.outreach.inbox_email

    def deliver(self, message: bytes, folder: str = "INBOX") -> None:
        self.server.append(self.inbox_email, message, folder)

    def reply_from(self, lead: SentLead, **fields: Any) -> None:
        """Deliver a reply from one of the campaign's leads to the email it was sent (`fields`: see
        tests.fixtures.inbound.reply)."""
        self.deliver(reply(lead.header, from_email=lead.email, to_email=self.inbox_email, **fields))

    def imap(self) -> imaplib.IMAP4:
        return self.server.login(self.inbox_email)

    def context(self, **overrides: Any) -> WorkerContext:
        """A fresh worker (its own connection pool and instance id), seeing `self.now`."""
        http = httpx.AsyncClient(timeout=10.0)
        ctx = WorkerContext(
            self.settings.model_copy(update=overrides),
            self.database,
            None,
            http,
            f"inbound-test-{len(self.contexts) + 1}",
            clock=lambda: self.now,
        )
        self.contexts.append(ctx)
        return ctx

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    async def read(self, ctx: WorkerContext) -> int:
        """Worker iterations until one finds nothing more to do right now (bounded)."""
        total = 0
        for _ in range(20):
            done = await read_inboxes(ctx)
            total += done
            if not done:
                return total
        raise AssertionError("the reader kept finding work")


@pytest.fixture
async def make_mailroom(
    database: Database,
    settings: Settings,
    workspace,
    dovecot: DovecotServer,  # noqa: F811
    security: str,
) -> AsyncIterator[Callable[..., Any]]:
    """Mailrooms whose inbox reads IMAP in the test's security mode (STARTTLS unless `@each_security`)."""
    rooms: list[Mailroom] = []

    async def make(
        server: DovecotServer | None = None,
        *,
        workspace_id: str | None = None,
        add_user: bool = True,
        **kwargs: Any,
    ) -> Mailroom:
        server = server or dovecot
        now = utcnow()
        outreach = await make_outreach(
            database,
            settings,
            workspace_id or workspace.workspace_id,
            now=now,
            imap_port=server.port_for(security),
            imap_security=security,
            **kwargs,
        )
        if add_user:
            server.add_user(outreach.inbox_email, outreach.imap_password)
        room = Mailroom(database, settings, server, outreach, now, [])
        rooms.append(room)
        return room

    yield make
    for room in rooms:
        for ctx in room.contexts:
            await inbound_pool(ctx).close()
            await ctx.http.aclose()


# --- reading back ----------------------------------------------------------------------------------------


async def events(database: Database, *types: str) -> list[Event]:
    async with database.transaction() as session:
        stmt = select(Event).order_by(Event.id)
        if types:
            stmt = stmt.where(Event.type.in_(types))
        return list((await session.execute(stmt)).scalars())


async def count(database: Database, model: Any) -> int:
    async with database.transaction() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def row(database: Database, model: Any, key: Any) -> Any:
    async with database.transaction() as session:
        return await session.get(model, key)


async def replies(database: Database) -> list[Reply]:
    async with database.transaction() as session:
        return list((await session.execute(select(Reply).order_by(Reply.id))).scalars())


async def suppressions(database: Database) -> list[Suppression]:
    async with database.transaction() as session:
        return list((await session.execute(select(Suppression))).scalars())


async def cursors(database: Database, inbox_id: str) -> dict[str, MailboxCursor]:
    async with database.transaction() as session:
        rows = await session.execute(select(MailboxCursor).where(MailboxCursor.inbox_id == inbox_id))
        return {c.folder: c for c in rows.scalars()}


async def poll(database: Database, inbox_id: str) -> MailboxPoll | None:
    return await row(database, MailboxPoll, inbox_id)


async def snapshot(database: Database) -> dict[str, Any]:
    """Everything the reader may change: a message that matches nothing must leave this equal."""
    async with database.transaction() as session:

        def rows(model: Any, *columns: Any) -> Any:
            return session.execute(select(*columns).order_by(*columns[:1]))

        return {
            "leads": (await rows(Lead, Lead.id, Lead.status, Lead.interest_status, Lead.updated_at)).all(),
            "states": (
                await rows(
                    SequenceState,
                    SequenceState.lead_id,
                    SequenceState.status,
                    SequenceState.next_step,
                    SequenceState.scheduled_at,
                    SequenceState.due_at,
                    SequenceState.stop_reason,
                )
            ).all(),
            "messages": (await rows(Message, Message.id, Message.status)).all(),
            "events": (await session.execute(select(func.count()).select_from(Event))).scalar_one(),
            "replies": (await session.execute(select(func.count()).select_from(Reply))).scalar_one(),
            "receipts": (
                await session.execute(select(func.count()).select_from(InboundReceipt))
            ).scalar_one(),
            "suppressions": (
                await session.execute(select(func.count()).select_from(Suppression))
            ).scalar_one(),
        }
