"""All SQL of the sending engine. `SequenceRepository` is tenant-scoped (API side); `SendQueue` is the
worker's cross-tenant view, which only ever starts from rows it has locked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Row, Table, and_, bindparam, case, func, or_, select, true, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from imail.kit.lease import ran_out
from imail.kit.repository import Repository, TenantRepository
from imail.kit.sql import (
    DriverStatement,
    HotPathRow,
    among,
    insert_rows,
    is_postgres,
    update_rows,
    upsert_insert,
)
from imail.mail.footer import Footer
from imail.models import Campaign, Inbox, Lead, Workspace
from imail.models.campaign import CampaignInbox, CampaignStatus
from imail.models.lead import LeadStatus
from imail.models.sending import (
    InboxPacing,
    Message,
    MessageStatus,
    SendCounter,
    SequenceState,
    SequenceStatus,
)
from imail.models.worker_heartbeat import owned_by_dead_worker

if TYPE_CHECKING:
    from imail.db import Database

IN_FLIGHT = (MessageStatus.sending.value, MessageStatus.handed.value)
ACCEPTED = 250  # the smtp_code of a handed attempt the server accepted (see `mark_accepted`)
# What planning may change in a sequence state: `save_claimed` writes these columns of every changed state in
# one statement, and refuses a state with a change outside them.
CLAIM_STATE_COLUMNS = (
    "status",
    "next_step",
    "scheduled_at",
    "due_at",
    "stop_reason",
    "inbox_id",
    "updated_at",
)


class SequenceRepository(TenantRepository[SequenceState]):
    model = SequenceState

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> None:
        """States of leads created in this very transaction, so none can exist yet (no conflict handling)."""
        if not rows:
            return
        stamped = [
            {**row, "workspace_id": self.tenant.workspace_id, "livemode": self.tenant.livemode}
            for row in rows
        ]
        if is_postgres(self.session):
            # COPY: bulk enrols thousands of leads in one request, and COPY streams rows without an INSERT's
            # per-row parameter binding and planning (measured in bench/leads.py).
            # The flush writes pending leads (their foreign keys) and begins the transaction on the driver
            # connection, which COPY bypasses SQLAlchemy to use.
            await self.session.flush()
            connection = await self.session.connection()
            await connection.exec_driver_sql("SELECT 1")
            driver = (await connection.get_raw_connection()).driver_connection
            if driver is None:  # an open connection always has one
                raise RuntimeError("the connection has no driver connection")
            columns = list(stamped[0])
            await driver.copy_records_to_table(
                SequenceState.__tablename__,
                columns=columns,
                records=[tuple(row[c] for c in columns) for row in stamped],
            )
        else:
            # executemany: SQLAlchemy batches the rows under SQLite's parameter limit.
            await self.session.execute(sqlite_insert(SequenceState), stamped)

    async def set_campaign_running(self, campaign_id: str, running: bool) -> None:
        """Pausing takes a campaign's leads out of the due index; resuming puts them back as scheduled."""
        await self.session.execute(
            update(SequenceState)
            .where(
                self.pin(SequenceState),
                SequenceState.campaign_id == campaign_id,
                SequenceState.status == SequenceStatus.scheduled.value,
            )
            .values(due_at=SequenceState.scheduled_at if running else None)
        )

    async def for_leads(self, lead_ids: Iterable[str]) -> dict[str, SequenceState]:
        ids = list(lead_ids)
        if not ids:
            return {}
        rows = await self.session.execute(self.select().where(among(SequenceState.lead_id, ids)))
        return {row.lead_id: row for row in rows.scalars()}


class MessageRepository(TenantRepository[Message]):
    model = Message

    async def page_for(
        self, params, *, campaign_id: str | None = None, lead_id: str | None = None
    ) -> list[Message]:
        stmt = self.select()
        if campaign_id is not None:
            stmt = stmt.where(Message.campaign_id == campaign_id)
        if lead_id is not None:
            stmt = stmt.where(Message.lead_id == lead_id)
        return await self.page(params, stmt)

    async def by_header(self, message_id_header: str) -> Message | None:
        stmt = self.select().where(Message.message_id_header == message_id_header)
        return (await self.session.execute(stmt)).scalar_one_or_none()


class InboxSends(Repository[Message]):
    """An inbox's latest campaign sends, for bounce protection (imail.sending.protection)."""

    model = Message

    async def latest(self, inbox_id: str, since: datetime | None, limit: int) -> tuple[int, int]:
        """(sends, hard bounces) among the inbox's latest `limit` emails that left or were refused for their
        recipient (sent or bounced), claimed after `since` when given."""
        recent = (
            select(Message.status)
            .where(
                Message.inbox_id == inbox_id,
                Message.status.in_((MessageStatus.sent.value, MessageStatus.bounced.value)),
            )
            .order_by(Message.created_at.desc())
            .limit(limit)
        )
        if since is not None:
            recent = recent.where(Message.created_at > since)
        window = recent.subquery()
        bounced = func.coalesce(
            func.sum(case((window.c.status == MessageStatus.bounced.value, 1), else_=0)), 0
        )
        sends, bounces = (await self.session.execute(select(func.count(), bounced).select_from(window))).one()
        return int(sends), int(bounces)


class SendQueue(Repository[SequenceState]):
    """The worker's queries: due work, the rows it needs, the counters it locks."""

    model = SequenceState

    async def lock_due(self, now: datetime, limit: int) -> list[HotPathRow]:
        """Up to `limit` due states, oldest first, locked (other workers skip them). An index range on due_at:
        the cost does not grow with the states that are not due. Plain rows: the claim writes them back with
        `save_claimed`.

        While more is due than that (a launch, a backlog), oldest first would fill claim after claim with one
        campaign's leads, which its few inboxes send a handful of, while every other campaign's first emails
        wait their turn: then each campaign with due states gets an equal share of the claim, its oldest,
        taken round-robin (every campaign's oldest, then every campaign's second…) up to `limit`."""
        if await self._more_due_than(now, limit) and (campaign_ids := await self._campaigns_due(now)):
            share = -(-limit // len(campaign_ids))
            if is_postgres(self.session):
                return await self._lock_shares(campaign_ids, now, share, limit)
            return await self._shares(now, share, limit)
        states = SequenceState.__table__
        stmt = select(states).where(states.c.due_at <= now).order_by(states.c.due_at).limit(limit)
        if is_postgres(self.session):
            stmt = stmt.with_for_update(skip_locked=True)
        return HotPathRow.all(await self.session.execute(stmt))

    async def _more_due_than(self, now: datetime, limit: int) -> bool:
        """Whether more than `limit` states are due: `limit` + 1 entries of the due_at index at most."""
        states = SequenceState.__table__
        due = select(states.c.lead_id).where(states.c.due_at <= now).limit(limit + 1).subquery()
        return (await self.session.execute(select(func.count()).select_from(due))).scalar_one() > limit

    async def _campaigns_due(self, now: datetime) -> list[str]:
        """The campaigns with due states: active ones only (pausing or archiving a campaign takes its states
        out of the due range), one probe of the (campaign_id, due_at) index each."""
        states = SequenceState.__table__
        campaigns = Campaign.__table__
        stmt = (
            select(campaigns.c.id)
            .where(
                campaigns.c.status == CampaignStatus.active.value,
                select(states.c.lead_id)
                .where(states.c.campaign_id == campaigns.c.id, states.c.due_at <= now)
                .exists(),
            )
            .order_by(campaigns.c.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def _lock_shares(
        self, campaign_ids: list[str], now: datetime, share: int, limit: int
    ) -> list[HotPathRow]:
        """PostgreSQL: each campaign's `share` oldest due states not locked by another worker (an index range
        per campaign), locked, and `limit` of them round-robin. The few beyond `limit` (fewer than one per
        campaign) stay locked, untouched, until the claim commits."""
        states = SequenceState.__table__
        campaigns = Campaign.__table__
        oldest = (
            select(states)
            .where(states.c.campaign_id == campaigns.c.id, states.c.due_at <= now)
            .order_by(states.c.due_at)
            .limit(share)
            .with_for_update(skip_locked=True)
            .lateral("oldest")
        )
        turn = func.row_number().over(partition_by=oldest.c.campaign_id, order_by=oldest.c.due_at)
        stmt = (
            select(oldest)
            .select_from(campaigns.join(oldest, true()))
            .where(among(campaigns.c.id, campaign_ids))
            .order_by(turn, oldest.c.due_at)
            .limit(limit)
        )
        return HotPathRow.all(await self.session.execute(stmt))

    async def _shares(self, now: datetime, share: int, limit: int) -> list[HotPathRow]:
        """SQLite (one worker, nothing to lock): each campaign's `share` oldest due states, `limit` of them
        round-robin, ranked in one pass over the due range."""
        states = SequenceState.__table__
        ranked = (
            select(
                states,
                func.row_number()
                .over(partition_by=states.c.campaign_id, order_by=states.c.due_at)
                .label("turn"),
            )
            .where(states.c.due_at <= now)
            .subquery()
        )
        stmt = (
            select(*(ranked.c[column.name] for column in states.c))
            .where(ranked.c.turn <= share)
            .order_by(ranked.c.turn, ranked.c.due_at)
            .limit(limit)
        )
        return HotPathRow.all(await self.session.execute(stmt))

    async def lock_waiting(self, campaign_ids: Sequence[str], now: datetime, limit: int) -> list[Row]:
        """Due states of these campaigns that no inbox holds yet (a first step), oldest first, locked (other
        workers skip them): (lead_id, campaign_id, livemode). The due_at index range: the due states only."""
        states = SequenceState.__table__
        stmt = (
            select(states.c.lead_id, states.c.campaign_id, states.c.livemode)
            .where(
                states.c.due_at <= now, among(states.c.campaign_id, campaign_ids), states.c.inbox_id.is_(None)
            )
            .order_by(states.c.due_at)
            .limit(limit)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update(skip_locked=True)
        return list(await self.session.execute(stmt))

    async def reschedule(self, due: Sequence[tuple[str, datetime]], now: datetime) -> None:
        """Sets when each of these states (lead id, due at) is next looked at, one statement."""
        await update_rows(
            self.session,
            SequenceState.__table__,
            "lead_id",
            [{"lead_id": lead_id, "scheduled_at": when, "due_at": when} for lead_id, when in due],
            values={"updated_at": now},
        )

    async def _by_ids(self, model: Any, ids: Iterable[str]) -> dict[str, Any]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = await self.session.execute(select(model).where(among(model.id, wanted)))
        return {row.id: row for row in rows.scalars()}

    async def campaigns(self, ids: Iterable[str]) -> dict[str, Campaign]:
        return await self._by_ids(Campaign, ids)

    async def leads(self, ids: Iterable[str]) -> dict[str, Lead]:
        return await self._by_ids(Lead, ids)

    async def footers(self, workspace_ids: Iterable[str]) -> dict[str, Footer]:
        """The email footer of each workspace, by workspace id."""
        workspaces = await self._by_ids(Workspace, workspace_ids)
        return {w.id: Footer(w.postal_address or "", w.footer_text) for w in workspaces.values()}

    async def inboxes(self, ids: Iterable[str]) -> dict[str, Inbox]:
        return await self._by_ids(Inbox, ids)

    async def messages(self, ids: Iterable[str], lock: bool = False) -> dict[str, Message]:
        if not lock:
            return await self._by_ids(Message, ids)
        wanted = sorted(set(ids))  # one lock order for every caller
        if not wanted:
            return {}
        stmt = select(Message).where(among(Message.id, wanted)).order_by(Message.id)
        if is_postgres(self.session):
            stmt = stmt.with_for_update()
        rows = await self.session.execute(stmt.execution_options(populate_existing=True))
        return {row.id: row for row in rows.scalars()}

    async def lock_messages(self, ids: Iterable[str]) -> None:
        """Row locks on these messages, taken in id order, the order every recorder and the resolver lock them
        in (PostgreSQL; SQLite's one writer needs none)."""
        wanted = sorted(set(ids))
        if not wanted or not is_postgres(self.session):
            return
        await self.session.execute(
            select(Message.id).where(among(Message.id, wanted)).order_by(Message.id).with_for_update()
        )

    async def campaign_inboxes(self, campaign_ids: Iterable[str]) -> dict[str, list[str]]:
        ids = list(set(campaign_ids))
        found: dict[str, list[str]] = defaultdict(list)
        if ids:
            rows = await self.session.execute(
                select(CampaignInbox.campaign_id, CampaignInbox.inbox_id)
                .where(among(CampaignInbox.campaign_id, ids))
                .order_by(CampaignInbox.campaign_id, CampaignInbox.position)
            )
            for campaign_id, inbox_id in rows:
                found[campaign_id].append(inbox_id)
        return found

    async def history(self, lead_ids: Iterable[str]) -> dict[str, list[HotPathRow]]:
        """Every message of these leads, by step, for threading, branching and retries (plain rows)."""
        ids = list(set(lead_ids))
        found: dict[str, list[HotPathRow]] = defaultdict(list)
        if ids:
            messages = Message.__table__
            rows = await self.session.execute(
                select(messages)
                .where(among(messages.c.lead_id, ids))
                .order_by(messages.c.lead_id, messages.c.step_index)
            )
            for message in HotPathRow.all(rows):
                found[message.lead_id].append(message)
        return found

    async def lead_rows(self, ids: Iterable[str]) -> dict[str, HotPathRow]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        leads = Lead.__table__
        return {
            lead.id: lead
            for lead in HotPathRow.all(
                await self.session.execute(select(leads).where(among(leads.c.id, wanted)))
            )
        }

    async def save_claimed(
        self,
        new_messages: Sequence[dict[str, Any]],
        states: Iterable[HotPathRow],
        leads: Iterable[HotPathRow],
        messages: Iterable[HotPathRow],
    ) -> None:
        """Writes what a claim planned: its new messages (whole rows), and what it changed in the plain rows
        it planned with: states, lead statuses, retried messages' new attempts. One statement per table for
        the first three (`insert_rows`, `update_rows`), every changed row with the same columns."""
        await insert_rows(self.session, Message.__table__, new_messages)
        changed = [s for s in states if s.changes()]
        for state in changed:
            unsaved = set(state.changes()) - set(CLAIM_STATE_COLUMNS)
            if unsaved:  # a planning change this statement would not write: fail loudly, never drop it
                raise ValueError(f"claim changed sequence-state columns it cannot save: {sorted(unsaved)}")
        await update_rows(
            self.session,
            SequenceState.__table__,
            "lead_id",
            [{"lead_id": s.lead_id, **{c: getattr(s, c) for c in CLAIM_STATE_COLUMNS}} for s in changed],
        )
        await update_rows(
            self.session,
            Lead.__table__,
            "id",
            [{"id": lead.id, "status": lead.status} for lead in leads if "status" in lead.changes()],
        )
        for message in messages:
            changes = message.changes()
            if changes:
                table = Message.__table__
                await self.session.execute(update(table).where(table.c.id == message.id).values(changes))

    async def sequence_states(self, lead_ids: Iterable[str]) -> dict[str, SequenceState]:
        ids = list(set(lead_ids))
        if not ids:
            return {}
        rows = await self.session.execute(select(SequenceState).where(among(SequenceState.lead_id, ids)))
        return {row.lead_id: row for row in rows.scalars()}

    async def lock_counters(self, scope_ids: Iterable[str], day: date) -> dict[str, HotPathRow]:
        """Today's counters for these campaigns and inboxes, created if missing and row-locked, so two workers
        can never both take the last send a limit allows. Plain rows (a claim locks a thousand and changes a
        few): their changes are written back by `save_counters`."""
        counters = SendCounter.__table__
        return await self._lock_rows(
            counters,
            counters.c.scope_id,
            scope_ids,
            lambda ids: [{"scope_id": i, "day": day, "sent": 0} for i in ids],
            counters.c.day == day,
        )

    async def save_counters(self, day: date, counters: Iterable[HotPathRow]) -> None:
        """Writes the new counts of the counters changed since `lock_counters` read them, one statement."""
        table = SendCounter.__table__
        await update_rows(
            self.session,
            table,
            "scope_id",
            [{"scope_id": c.scope_id, "sent": c.sent} for c in counters if c.changes()],
            table.c.day == day,
        )

    async def lock_pacing(self, inbox_ids: Iterable[str]) -> dict[str, HotPathRow]:
        """The inboxes' pacing rows, created if missing and row-locked (plain rows: see `save_pacing`)."""
        pacing = InboxPacing.__table__
        return await self._lock_rows(
            pacing, pacing.c.inbox_id, inbox_ids, lambda ids: [{"inbox_id": i} for i in ids]
        )

    async def save_pacing(self, pacing: Iterable[HotPathRow]) -> None:
        await update_rows(
            self.session,
            InboxPacing.__table__,
            "inbox_id",
            [
                {"inbox_id": p.inbox_id, "last_sent_at": p.last_sent_at, "next_send_at": p.next_send_at}
                for p in pacing
                if p.changes()
            ],
        )

    async def _lock_rows(
        self,
        table: Table,
        key: Column[str],
        ids: Iterable[str],
        new_rows: Callable[[list[str]], list[dict[str, Any]]],
        *conditions: ColumnElement[bool],
    ) -> dict[str, HotPathRow]:
        """The rows of `table` whose `key` is among `ids` (and `conditions`), locked in key order; the missing
        ones are inserted first (`new_rows(missing ids)`), and only those: an insert of every id at each
        claim, a no-op for all but a few, cost a claim over a thousand inboxes thousands of executions. A row
        another transaction creates meanwhile is kept (ON CONFLICT DO NOTHING) and locked after it commits."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        present = select(key).where(among(key, wanted), *conditions)
        missing = sorted(set(wanted) - set((await self.session.execute(present)).scalars()))
        if missing:
            await self.session.execute(
                upsert_insert(self.session)(table).on_conflict_do_nothing(
                    index_elements=[c.name for c in table.primary_key]
                ),
                new_rows(missing),
            )
        stmt = select(table).where(among(key, wanted), *conditions).order_by(key)
        if is_postgres(self.session):
            stmt = stmt.with_for_update()
        return {getattr(row, key.name): row for row in HotPathRow.all(await self.session.execute(stmt))}

    async def adjust_counters(self, day: date, scope_ids: Iterable[str], delta: int) -> None:
        # In scope order, the order `lock_counters` takes them in: two transactions never wait on each
        # other's.
        for scope_id in sorted(set(scope_ids)):
            await self.session.execute(
                update(SendCounter)
                .where(SendCounter.scope_id == scope_id, SendCounter.day == day)
                .values(sent=SendCounter.sent + delta)
            )

    async def mark_handed(self, attempts: Iterable[tuple[str, str]]) -> set[str]:
        """Marks attempts, as (message id, Message-ID header) pairs, handed to SMTP; returns the ids of those
        that still owned their message. Not the others: their lease ran out and they were requeued (and maybe
        claimed again, with a new Message-ID) meanwhile. A header names one attempt, so the pairs need no
        joining. (The worker's marks go through `mark_handed(database, …)`, the same statement on PostgreSQL's
        pinned connection.)"""
        ids, headers = _attempt_columns(attempts)
        result = await self.session.execute(_mark_handed_statement(), {"ids": ids, "headers": headers})
        return set(result.scalars())

    # --- recording sends as sets of rows (Core): the common outcome, an accepted live email, costs a few
    # statements per batch and no ORM instances

    async def lock_live_in_flight(self, ids: Iterable[str]) -> list[Row]:
        """The live attempts among these still in flight (not settled meanwhile by the in-flight resolver), as
        plain rows, locked in id order (the order every recorder locks messages in)."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        messages = Message.__table__.c
        stmt = (
            select(
                messages.id,
                messages.workspace_id,
                messages.livemode,
                messages.campaign_id,
                messages.lead_id,
                messages.inbox_id,
                messages.to_email,
                messages.step_index,
                messages.variant,
                messages.subject,
                messages.message_id_header,
            )
            .where(among(messages.id, wanted), messages.status.in_(IN_FLIGHT), messages.livemode.is_(True))
            .order_by(messages.id)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update()
        return list(await self.session.execute(stmt))

    async def settle_sent(self, now: datetime, answers: Sequence[tuple[str, int | None, str | None]]) -> None:
        """Accepted by SMTP: `answers` are (message id, SMTP code, SMTP response)."""
        await update_rows(
            self.session,
            Message.__table__,
            "id",
            [
                {"id": message_id, "smtp_code": code, "smtp_response": response}
                for message_id, code, response in answers
            ],
            values={"status": MessageStatus.sent.value, "sent_at": now, "lease_until": None},
        )

    async def lead_timezones(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        leads = Lead.__table__.c
        return dict(
            (
                await self.session.execute(select(leads.id, leads.timezone).where(among(leads.id, wanted)))
            ).all()
        )

    async def campaign_sequences(self, ids: Iterable[str]) -> dict[str, Row]:
        """Each campaign's steps, send window and status."""
        wanted = list(set(ids))
        if not wanted:
            return {}
        campaigns = Campaign.__table__.c
        rows = await self.session.execute(
            select(campaigns.id, campaigns.steps, campaigns.send_window, campaigns.status).where(
                among(campaigns.id, wanted)
            )
        )
        return {row.id: row for row in rows}

    async def advance_sent(
        self, now: datetime, scheduled: Sequence[dict[str, Any]], finished: Sequence[str]
    ) -> None:
        """States whose email was just sent: `scheduled` ({lead_id, next_step, scheduled_at, due_at}) have a
        next step, `finished` (lead ids) had their last, and their leads, if still active, are completed. Only
        states still `sending` (and their leads): one stopped meanwhile (a reply, an unsubscribe) stays
        stopped."""
        states = SequenceState.__table__.c
        still_sending = states.status == SequenceStatus.sending.value
        await update_rows(
            self.session,
            SequenceState.__table__,
            "lead_id",
            scheduled,
            still_sending,
            values={"status": SequenceStatus.scheduled.value, "last_sent_at": now, "updated_at": now},
        )
        if finished:
            ended = (
                (
                    await self.session.execute(
                        update(SequenceState.__table__)
                        .where(among(states.lead_id, finished), still_sending)
                        .values(
                            status=SequenceStatus.finished.value,
                            due_at=None,
                            last_sent_at=now,
                            updated_at=now,
                        )
                        .returning(states.lead_id)
                    )
                )
                .scalars()
                .all()
            )
            if ended:
                leads = Lead.__table__.c
                await self.session.execute(
                    update(Lead.__table__)
                    .where(among(leads.id, ended), leads.status == LeadStatus.active.value)
                    .values(status=LeadStatus.completed.value)
                )

    async def lock_stale_in_flight(
        self, now: datetime, limit: int, lease: timedelta | None = None, dead_after: timedelta | None = None
    ) -> list[Message]:
        """Attempts in flight whose worker is gone: their lease ran out, or (with `lease` and `dead_after`)
        their worker has not been seen for `dead_after` and they were claimed at least that long ago (a claim
        made by a process whose first heartbeat is still on its way is not taken from it)."""
        stale = ran_out(Message.lease_until, now)
        if lease is not None and dead_after is not None:
            stale = or_(
                stale,
                and_(
                    owned_by_dead_worker(Message.worker_id, now, dead_after),
                    Message.lease_until < now + lease - dead_after,
                ),
            )
        stmt = (
            select(Message)
            .where(Message.status.in_(IN_FLIGHT), stale)
            .order_by(Message.lease_until, Message.id)
            .limit(limit)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update(skip_locked=True)
        return list((await self.session.execute(stmt)).scalars())

    async def dead_claims(
        self, now: datetime, lease: timedelta, dead_after: timedelta
    ) -> tuple[int, datetime | None]:
        """Attempts in flight held by workers not seen for `dead_after`: how many, and when the oldest was
        claimed."""
        count, oldest_lease = (
            await self.session.execute(
                select(func.count(), func.min(Message.lease_until)).where(
                    Message.status.in_(IN_FLIGHT), owned_by_dead_worker(Message.worker_id, now, dead_after)
                )
            )
        ).one()
        if not count or oldest_lease is None:
            return 0, None
        if oldest_lease.tzinfo is None:
            oldest_lease = oldest_lease.replace(tzinfo=UTC)
        return int(count), oldest_lease - lease


@cache
def _mark_handed_statement() -> Any:
    """Built once (this runs for every email sent); the attempts come as the parameters `ids` and
    `headers`."""
    messages = Message.__table__.c
    return (
        update(Message.__table__)
        .where(
            among(messages.id, bindparam("ids")),
            among(messages.message_id_header, bindparam("headers")),
            messages.status == MessageStatus.sending.value,
        )
        .values(status=MessageStatus.handed.value)
        .returning(messages.id)
    )


@cache
def _mark_handed_on_driver(dialect: Any) -> DriverStatement:
    return DriverStatement(_mark_handed_statement(), dialect)


@cache
def _mark_accepted_statement() -> Any:
    """An attempt the SMTP server answered 250: `smtp_code` 250 on a `handed` row is the durable record that
    it was accepted, written as soon as the answer came, before its outcome (events, the next step) is
    recorded. A worker killed in between leaves it `handed` and accepted, and the resolver records it `sent`
    without asking anyone."""
    messages = Message.__table__.c
    return (
        update(Message.__table__)
        .where(among(messages.id, bindparam("ids")), messages.status == MessageStatus.handed.value)
        .values(smtp_code=ACCEPTED)
    )


@cache
def _mark_accepted_on_driver(dialect: Any) -> DriverStatement:
    return DriverStatement(_mark_accepted_statement(), dialect)


async def mark_accepted(database: Database, message_ids: Iterable[str]) -> None:
    """Marks handed attempts accepted by the SMTP server, committed before this returns (like `mark_handed`,
    on PostgreSQL's pinned driver connection)."""
    ids = list(message_ids)
    if not ids:
        return
    if database.is_sqlite:
        async with database.autocommit() as session:
            await session.execute(_mark_accepted_statement(), {"ids": ids})
        return
    statement = _mark_accepted_on_driver(database.engine.dialect)
    async with database.pinned() as connection:
        await connection.execute(statement.sql, *statement.args(ids=ids))


def _attempt_columns(attempts: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    pairs = list(attempts)
    return [message_id for message_id, _ in pairs], [header for _, header in pairs]


async def mark_handed(database: Database, attempts: Iterable[tuple[str, str]]) -> set[str]:
    """`SendQueue.mark_handed`, committed on its own before this returns. On PostgreSQL it runs on the
    database's pinned connection, straight on the driver: the marks are the engine's most frequent statement,
    and SQLAlchemy's work per execution plus a pool check-out cost several times the statement's own CPU (see
    the sending profile in bench/sending.py)."""
    if database.is_sqlite:
        async with database.autocommit() as session:
            return await SendQueue(session).mark_handed(attempts)
    ids, headers = _attempt_columns(attempts)
    statement = _mark_handed_on_driver(database.engine.dialect)
    async with database.pinned() as connection:
        rows = await connection.fetch(statement.sql, *statement.args(ids=ids, headers=headers))
    return {row[0] for row in rows}
