"""All SQL of the inbound reader. `ReaderQueue` is the worker's cross-tenant view (which inboxes to read,
leases, cursors, receipts); `ThreadLookup` finds our emails for one tenant only, so a message read from one
workspace's inbox can never be matched to another workspace's email."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, case, func, or_, select, update

from imail.kit.lease import free
from imail.kit.repository import Repository, TenantRepository
from imail.kit.sql import among, insert_rows, is_postgres, rowcount, upsert_insert
from imail.models import Campaign, Inbox, Lead, Message, Reply
from imail.models.inbox import InboxStatus
from imail.models.mailbox_cursor import InboundReceipt, MailboxCursor, MailboxPoll
from imail.models.sending import MessageStatus, SequenceState
from imail.models.worker_heartbeat import owned_by_dead_worker

# Emails a reply or bounce can be about: everything that may have left the server.
SENT_STATUSES = (
    MessageStatus.sent.value,
    MessageStatus.sending.value,
    MessageStatus.retry.value,
    MessageStatus.bounced.value,
    MessageStatus.unknown.value,
)


def _orphaned(now: datetime, lease: timedelta, dead_after: timedelta, claimant: str) -> Any:
    """A reader row whose worker has no heartbeat within `dead_after` (SIGKILLed, or stopped): its IDLE wait
    or its read is over, whatever `next_poll_at` or the lease say. A lease taken less than `dead_after` ago
    is left alone: its worker's first heartbeat may still be on its way. The claimant is alive, whatever its
    heartbeat row says."""
    return and_(
        MailboxPoll.worker_id.is_not(None),
        MailboxPoll.worker_id != claimant,
        owned_by_dead_worker(MailboxPoll.worker_id, now, dead_after),
        or_(MailboxPoll.lease_until.is_(None), MailboxPoll.lease_until < now + lease - dead_after),
    )


class ReaderQueue(Repository[MailboxPoll]):
    model = MailboxPoll

    async def due_inboxes(
        self, now: datetime, limit: int, lease: timedelta, dead_after: timedelta, claimant: str
    ) -> list[Inbox]:
        """Live, connected inboxes with an IMAP server: never read, due again and not leased, or left by a
        dead worker (`orphaned`), those first."""
        orphaned = _orphaned(now, lease, dead_after, claimant)
        stmt = (
            select(Inbox)
            .outerjoin(MailboxPoll, MailboxPoll.inbox_id == Inbox.id)
            .where(
                Inbox.livemode.is_(True),
                Inbox.status == InboxStatus.connected.value,
                Inbox.imap_host.is_not(None),
                or_(
                    MailboxPoll.inbox_id.is_(None),
                    and_(
                        or_(MailboxPoll.next_poll_at.is_(None), MailboxPoll.next_poll_at <= now),
                        free(MailboxPoll.lease_until, now),
                    ),
                    orphaned,
                ),
            )
            .order_by(
                MailboxPoll.next_poll_at.is_not(None),
                case((orphaned, 0), else_=1),
                MailboxPoll.next_poll_at,
                Inbox.id,
            )
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def readable(self, inbox_ids: Iterable[str]) -> list[Inbox]:
        """These inboxes, if they may still be read (live, connected, IMAP configured)."""
        ids = sorted(set(inbox_ids))
        if not ids:
            return []
        stmt = select(Inbox).where(
            among(Inbox.id, ids),
            Inbox.livemode.is_(True),
            Inbox.status == InboxStatus.connected.value,
            Inbox.imap_host.is_not(None),
        )
        return list((await self.session.execute(stmt)).scalars())

    async def claim(
        self,
        inbox_ids: Sequence[str],
        now: datetime,
        lease_until: datetime,
        worker_id: str,
        dead_after: timedelta,
    ) -> set[str]:
        """Take the lease on these inboxes where no other worker holds one, or where the one holding it is
        dead; the ids this call got. A conditional upsert: of two workers claiming one inbox at once, exactly
        one gets it."""
        ids = sorted(set(inbox_ids))
        if not ids:
            return set()
        table = MailboxPoll.__table__
        stmt = upsert_insert(self.session)(table).values(
            [{"inbox_id": i, "lease_until": lease_until, "worker_id": worker_id, "idle": False} for i in ids]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["inbox_id"],
            set_={"lease_until": lease_until, "worker_id": worker_id},
            where=or_(
                free(table.c.lease_until, now), _orphaned(now, lease_until - now, dead_after, worker_id)
            ),
        ).returning(table.c.inbox_id)
        return {row[0] for row in (await self.session.execute(stmt)).all()}

    async def release(
        self,
        inbox_id: str,
        worker_id: str,
        next_poll_at: datetime,
        idle: bool,
        now: datetime,
        error: str | None,
    ) -> None:
        await self.session.execute(
            update(MailboxPoll)
            .where(MailboxPoll.inbox_id == inbox_id, MailboxPoll.worker_id == worker_id)
            .values(
                lease_until=None,
                next_poll_at=next_poll_at,
                idle=idle,
                polled_at=now,
                last_error=error[:1000] if error else None,
            )
        )

    async def owners(self, inbox_ids: Iterable[str]) -> dict[str, str | None]:
        """Which worker last read each of these inboxes, for those that may still be read."""
        ids = sorted(set(inbox_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(MailboxPoll.inbox_id, MailboxPoll.worker_id)
            .join(Inbox, Inbox.id == MailboxPoll.inbox_id)
            .where(among(MailboxPoll.inbox_id, ids), Inbox.status == InboxStatus.connected.value)
        )
        return {inbox_id: worker_id for inbox_id, worker_id in rows.all()}

    async def back_to_polling(self, inbox_ids: Iterable[str], worker_id: str, when: datetime) -> None:
        """This worker stopped IDLE-ing on these inboxes: read them by the polling interval again."""
        ids = sorted(set(inbox_ids))
        if not ids:
            return
        await self.session.execute(
            update(MailboxPoll)
            .where(
                among(MailboxPoll.inbox_id, ids),
                MailboxPoll.worker_id == worker_id,
                MailboxPoll.idle.is_(True),
                MailboxPoll.lease_until.is_(None),
                or_(MailboxPoll.next_poll_at.is_(None), MailboxPoll.next_poll_at > when),
            )
            .values(idle=False, next_poll_at=when)
        )

    # -- the rows a batch acts on ----------------------------------------------------------------------------

    def _locked(self, stmt):
        if is_postgres(self.session):
            stmt = (
                stmt.with_for_update()
            )  # the sending worker updates these too: wait for it, never overwrite it
        return stmt.execution_options(populate_existing=True)

    async def lock_messages(self, ids: Iterable[str]) -> dict[str, Message]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = await self.session.execute(
            self._locked(select(Message).where(among(Message.id, wanted)).order_by(Message.id))
        )
        return {m.id: m for m in rows.scalars()}

    async def lock_states(self, lead_ids: Iterable[str]) -> dict[str, SequenceState]:
        wanted = sorted(set(lead_ids))
        if not wanted:
            return {}
        stmt = (
            select(SequenceState).where(among(SequenceState.lead_id, wanted)).order_by(SequenceState.lead_id)
        )
        return {s.lead_id: s for s in (await self.session.execute(self._locked(stmt))).scalars()}

    async def leads(self, ids: Iterable[str]) -> dict[str, Lead]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(Lead).where(among(Lead.id, wanted)).execution_options(populate_existing=True)
        )
        return {lead.id: lead for lead in rows.scalars()}

    async def campaigns(self, ids: Iterable[str]) -> dict[str, Campaign]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = await self.session.execute(select(Campaign).where(among(Campaign.id, wanted)))
        return {c.id: c for c in rows.scalars()}

    # -- cursors -------------------------------------------------------------------------------------------

    async def cursor(self, inbox_id: str, folder: str) -> MailboxCursor | None:
        stmt = select(MailboxCursor).where(MailboxCursor.inbox_id == inbox_id, MailboxCursor.folder == folder)
        return (
            await self.session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def reset_cursor(
        self, inbox_id: str, folder: str, uidvalidity: int, last_uid: int, now: datetime
    ) -> None:
        """Start (or start again, after a UIDVALIDITY change) reading a folder after `last_uid`."""
        table = MailboxCursor.__table__
        values = {"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": now}
        stmt = upsert_insert(self.session)(table).values(
            inbox_id=inbox_id, folder=folder, synced_at=None, **values
        )
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["inbox_id", "folder"], set_=values)
        )

    async def advance(
        self,
        inbox_id: str,
        folder: str,
        uidvalidity: int,
        expected: int,
        last_uid: int,
        now: datetime,
        synced: bool,
    ) -> bool:
        """Move the cursor from `expected` to `last_uid`; False if it was not at `expected` any more (another
        reader moved it: the caller rolls its work back rather than act twice)."""
        values: dict = {"last_uid": last_uid, "updated_at": now}
        if synced:
            values["synced_at"] = now
        result = await self.session.execute(
            update(MailboxCursor)
            .where(
                MailboxCursor.inbox_id == inbox_id,
                MailboxCursor.folder == folder,
                MailboxCursor.uidvalidity == uidvalidity,
                MailboxCursor.last_uid == expected,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result) == 1

    async def touch(self, inbox_id: str, folder: str, now: datetime) -> None:
        """The folder was read to its end: the horizon a UIDVALIDITY change searches back to moves up."""
        await self.session.execute(
            update(MailboxCursor)
            .where(MailboxCursor.inbox_id == inbox_id, MailboxCursor.folder == folder)
            .values(synced_at=now)
            .execution_options(synchronize_session=False)
        )

    async def add_replies(self, rows: list[dict]) -> None:
        """Insert replies rows, each with a value for every column."""
        await insert_rows(self.session, Reply.__table__, rows)

    # -- receipts ------------------------------------------------------------------------------------------

    async def add_receipts(self, rows: list[dict]) -> set[str]:
        """Record that these messages are being acted on (one statement); the keys that were new. A key
        already there means the message was acted on before: nothing more is done with it."""
        if not rows:
            return set()
        table = InboundReceipt.__table__
        # The rows as executemany parameters, not a VALUES list: one cached statement whatever the batch's
        # length.
        stmt = (
            upsert_insert(self.session)(table)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(table.c.key)
        )
        return {row[0] for row in (await self.session.execute(stmt, rows)).all()}

    async def receipt_counts(
        self, message_ids: Iterable[str], kind: str, exclude: Iterable[str] = ()
    ) -> dict[str, int]:
        """How many receipts of `kind` each of these messages has, leaving out the receipts keyed
        `exclude`."""
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}
        stmt = (
            select(InboundReceipt.message_id, func.count())
            .where(among(InboundReceipt.message_id, wanted), InboundReceipt.kind == kind)
            .group_by(InboundReceipt.message_id)
        )
        skipped = sorted(exclude)
        if skipped:
            stmt = stmt.where(InboundReceipt.key.not_in(skipped))
        rows = (await self.session.execute(stmt)).all()
        return {message_id: count for message_id, count in rows if message_id is not None}


class OurEmail(NamedTuple):
    """What matching an inbound message needs of one of our emails: read as plain rows, since a batch reads
    one per message and an ORM instance of the whole email costs more than the matching."""

    id: str
    to_email: str
    subject: str


class ThreadLookup(TenantRepository[Message]):
    """Our emails, for one tenant: by Message-ID header, or by recipient from one inbox."""

    model = Message

    def _emails(self, *columns: Any) -> Select[Any]:
        return self.select(Message.id, Message.to_email, Message.subject, *columns)

    async def by_headers(self, headers: Iterable[str]) -> dict[str, OurEmail]:
        wanted = sorted({h for h in headers if h and len(h) <= 255})
        if not wanted:
            return {}
        rows = await self.session.execute(
            self._emails(Message.message_id_header).where(among(Message.message_id_header, wanted))
        )
        return {header: OurEmail(id_, to_email, subject) for id_, to_email, subject, header in rows}

    async def sent_to(self, inbox_id: str, emails: Iterable[str]) -> list[OurEmail]:
        """Emails this inbox sent to these addresses, newest first."""
        wanted = sorted({e for e in emails if e})
        if not wanted:
            return []
        stmt = (
            self._emails()
            .where(
                Message.inbox_id == inbox_id,
                among(Message.to_email, wanted),
                Message.status.in_(SENT_STATUSES),
            )
            .order_by(Message.created_at.desc(), Message.step_index.desc())
        )
        return [OurEmail(*row) for row in await self.session.execute(stmt)]
