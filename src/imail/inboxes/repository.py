from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, update

from imail.kit.repository import Repository, TenantRepository
from imail.kit.sql import among, rowcount
from imail.models import Campaign, CampaignInbox, Inbox
from imail.models.campaign import CampaignStatus
from imail.models.inbox import InboxProvider, InboxStatus
from imail.models.mailbox_cursor import MailboxPoll


class InboxRepository(TenantRepository[Inbox]):
    model = Inbox

    async def replace_refresh_token(self, inbox_id: str, previous: str | None, ciphertext: str) -> None:
        """The inbox's refresh token becomes `ciphertext`, if it still is `previous`."""
        await self.session.execute(
            update(Inbox)
            .where(self.pin(Inbox), Inbox.id == inbox_id, Inbox.oauth_refresh_token_encrypted == previous)
            .values(oauth_refresh_token_encrypted=ciphertext)
            .execution_options(synchronize_session=False)
        )

    async def by_email(self, email: str) -> Inbox | None:
        stmt = self.select().where(Inbox.email == email)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def set_status_if(
        self,
        inbox_id: str,
        expected: tuple[str, ...],
        status: str,
        *,
        only_if: tuple[ColumnElement[bool], ...] = (),
        **values: Any,
    ) -> bool:
        """Move to `status` only from one of `expected` (and where `only_if` holds), atomically: True if this
        call made the transition.

        Two monitors (or a monitor and a request) seeing the same change cannot both win, which is what
        makes `inbox.disconnected` / `inbox.reconnected` fire once per transition.
        """
        stmt = (
            update(Inbox)
            .where(
                self.pin(Inbox),
                Inbox.id == inbox_id,
                Inbox.status.in_(expected),
                *only_if,
            )
            .values(status=status, **values)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return rowcount(result) == 1

    async def count_read_failure(self, inbox_id: str, reason: str, now: datetime, crash: str | None) -> int:
        """One more failed read (and its reason); the count now, 0 if the inbox is gone. `crash`, when given,
        is the fingerprint of the imail error whose traceback is logged."""
        values: dict[str, Any] = {
            "read_failures": Inbox.read_failures + 1,
            "last_read_error": reason,
            "last_read_error_at": now,
        }
        if crash is not None:
            values["read_crash_logged"] = crash
        stmt = (
            update(Inbox)
            .where(
                self.pin(Inbox),
                Inbox.id == inbox_id,
            )
            .values(**values)
            .returning(Inbox.read_failures)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() or 0

    async def clear_read_failures(self, inbox_id: str) -> None:
        """A read worked: no failures in a row, no last read error (the logged crash stays known)."""
        await self.session.execute(
            update(Inbox)
            .where(
                self.pin(Inbox),
                Inbox.id == inbox_id,
                or_(Inbox.read_failures > 0, Inbox.last_read_error.is_not(None)),
            )
            .values(read_failures=0, last_read_error=None, last_read_error_at=None)
            .execution_options(synchronize_session=False)
        )

    async def pause_sending_if_running(
        self, inbox_id: str, now: datetime, reason: str, detail: str | None
    ) -> str | None:
        """Pause the inbox's campaign sending unless it is paused already: its address if this call paused it
        (of racing callers, one wins, so `inbox.sending_paused` fires once), else None."""
        stmt = (
            update(Inbox)
            .where(
                self.pin(Inbox),
                Inbox.id == inbox_id,
                Inbox.sending_paused_at.is_(None),
            )
            .values(sending_paused_at=now, sending_paused_reason=reason, sending_paused_detail=detail)
            .returning(Inbox.email)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def resume_sending(self, inbox_id: str, now: datetime) -> None:
        await self.session.execute(
            update(Inbox)
            .where(
                self.pin(Inbox),
                Inbox.id == inbox_id,
                Inbox.sending_paused_at.is_not(None),
            )
            .values(
                sending_paused_at=None,
                sending_paused_reason=None,
                sending_paused_detail=None,
                sending_resumed_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    async def stamp(
        self, inbox_id: str, *, only_if: tuple[ColumnElement[bool], ...] = (), **values: Any
    ) -> None:
        """Set these columns of the stored inbox (where `only_if` holds), without loading it."""
        await self.session.execute(
            update(Inbox)
            .where(self.pin(Inbox), Inbox.id == inbox_id, *only_if)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def exclusive_campaign(self, inbox_id: str) -> str | None:
        """An active campaign that sends only from this inbox (no other connected inbox): its id, or None."""
        others = (
            select(CampaignInbox.campaign_id)
            .join(Inbox, Inbox.id == CampaignInbox.inbox_id)
            .where(
                CampaignInbox.campaign_id == Campaign.id,
                CampaignInbox.inbox_id != inbox_id,
                Inbox.status == InboxStatus.connected.value,
            )
        )
        stmt = (
            select(Campaign.id)
            .join(
                CampaignInbox,
                and_(CampaignInbox.campaign_id == Campaign.id, CampaignInbox.inbox_id == inbox_id),
            )
            .where(self.pin(Campaign), Campaign.status == CampaignStatus.active.value, ~exists(others))
            .order_by(Campaign.id)
            .limit(1)
        )
        found: str | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def remove(self, inbox: Inbox) -> None:
        await self.session.execute(
            delete(Inbox).where(
                self.pin(Inbox),
                Inbox.id == inbox.id,
            )
        )


class InboxMaintenance(Repository[Inbox]):
    """The cross-tenant reads of the connection monitor and `imail secrets rotate` (workers and operators
    only); every change they lead to goes through InboxRepository with the row's own tenant."""

    model = Inbox

    async def due_for_check(self, cutoff: datetime, limit: int) -> list[Inbox]:
        """Live inboxes that can log in (connected or disconnected) and were not checked since `cutoff`. An
        OAuth inbox whose refresh token the provider declared dead has nothing to log in with before a new
        consent: it is not checked."""
        stmt = (
            select(Inbox)
            .where(
                Inbox.livemode.is_(True),
                Inbox.status.in_((InboxStatus.connected.value, InboxStatus.disconnected.value)),
                or_(
                    Inbox.provider == InboxProvider.custom.value,
                    Inbox.oauth_refresh_token_encrypted.is_not(None),
                ),
                or_(Inbox.last_checked_at.is_(None), Inbox.last_checked_at < cutoff),
            )
            .order_by(Inbox.last_checked_at.is_(None).desc(), Inbox.last_checked_at, Inbox.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def read_without_error(
        self, inbox_ids: Iterable[str], polled_since: datetime, idle_since: datetime
    ) -> set[str]:
        """Of these inboxes, those whose last IMAP read worked and either ended after `polled_since` or left
        the inbox IDLE-ing (the reader watches that connection) and ended after `idle_since`."""
        ids = sorted(set(inbox_ids))
        if not ids:
            return set()
        rows = await self.session.execute(
            select(MailboxPoll.inbox_id).where(
                among(MailboxPoll.inbox_id, ids),
                MailboxPoll.last_error.is_(None),
                or_(
                    MailboxPoll.polled_at >= polled_since,
                    and_(MailboxPoll.idle.is_(True), MailboxPoll.polled_at >= idle_since),
                ),
            )
        )
        return set(rows.scalars())

    async def claim(self, inbox_id: str, cutoff: datetime, now: datetime) -> bool:
        """Stamp `last_checked_at` if it is still due: True for exactly one of several racing workers."""
        stmt = (
            update(Inbox)
            .where(Inbox.id == inbox_id, or_(Inbox.last_checked_at.is_(None), Inbox.last_checked_at < cutoff))
            .values(last_checked_at=now)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt)) == 1

    async def batch_after(self, after_id: str | None, limit: int) -> list[Inbox]:
        """Every inbox (all workspaces, both ledgers) in id order, `limit` at a time."""
        stmt = select(Inbox).order_by(Inbox.id).limit(limit)
        if after_id is not None:
            stmt = stmt.where(Inbox.id > after_id)
        return list((await self.session.execute(stmt)).scalars())
