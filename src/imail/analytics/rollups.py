"""Daily rollups, maintained in the same transaction as the events (called when `record_event` writes them).

One pure function, `plan`, says what an event adds: counter deltas under a key (campaign, step, variant,
inbox, day UTC) and what to remember about the email or reply it concerns (`analytics_refs`). The live path
loads those refs (row-locked on PostgreSQL), folds a batch of events through the plan in memory and adds the
sums with INSERT … ON CONFLICT DO UPDATE; `rebuild` folds the whole event log through the very same `Fold`, so
both produce identical numbers.

Definitions (raw counts; rates are yours to compute):
- day: the UTC date of the event's `created_at`; a reply's `interested` / `meeting_booked` count on the day of
the
  reply itself (a later relabel moves the count, it never double counts).
- opened / clicked: every open/click hit, the `email.opened` / `email.clicked` events and the internal
  `*.repeat` ones (hits of one pixel or link within a minute of its last event); *_machine: those flagged
  machine; *_unique: the first human (non-machine) open/click of each email (remembered per email in
  analytics_refs).
- replied: `reply.received` events (real replies only), counted under the campaign/step/variant/inbox of the
email
  replied to; auto_replied: `email.auto_replied` (an internal event type, never sent to webhooks), likewise.
- unsubscribed: `lead.unsubscribed`: a recipient's first unsubscribe through one of our emails (its link, the
  one-click or mailto header, or a reply asking to stop), under that email's key. Suppressions made through
  the API (`source: api`) name no email and are not campaign unsubscribes: not counted.
- interested / meeting_booked: replies whose current label (last `reply.classified`) is that label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.analytics.repository import COARSE_FIELDS, RollupRepository
from imail.events.subscribers import NewEvent
from imail.kit.tenancy import Tenant, tenant_of
from imail.models.analytics import COUNTERS, AnalyticsRef

Key = tuple[str, int, str, str, date]  # campaign_id, step, variant, inbox_id, day
LABEL_COUNTERS = {"interested": "interested", "meeting_booked": "meeting_booked"}
DIRECT = {
    "email.sent": "sent",
    "email.delivered": "delivered",
    "email.bounced.hard": "bounced_hard",
    "email.bounced.soft": "bounced_soft",
    "email.auto_replied": "auto_replied",
    "lead.unsubscribed": "unsubscribed",
}
# Opens and clicks, and their repeats (internal, see events.types), by the counter they feed.
ENGAGEMENT = {
    "email.opened": "opened",
    "email.opened.repeat": "opened",
    "email.clicked": "clicked",
    "email.clicked.repeat": "clicked",
}
COUNTED = {*DIRECT, *ENGAGEMENT, "reply.received", "reply.classified"}
CREATE_ONLY = {"email.sent"}  # its ref is inserted if absent, never overwritten


@dataclass(frozen=True, slots=True)
class Ref:
    campaign_id: str
    step: int
    variant: str
    inbox_id: str
    day: date | None
    opened: int = 0
    clicked: int = 0
    label: str | None = None

    def key(self, day: date | None = None) -> Key:
        return (self.campaign_id, self.step, self.variant, self.inbox_id, day or self.day)  # type: ignore[return-value]


def _ref_of(data: Mapping[str, Any], day: date) -> Ref:
    return Ref(
        data.get("campaign_id") or "",
        int(data.get("step") or 0),
        data.get("variant") or "",
        data.get("inbox_id") or "",
        day,
    )


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def needed_refs(event_type: str, data: Mapping[str, Any]) -> list[str]:
    """The refs `plan` must be given (most events need none: one statement, no read)."""
    if event_type in ENGAGEMENT and not data.get("machine"):
        return [data["message_id"]]
    if event_type == "reply.received":
        return [i for i in (data.get("message_id"), data["reply_id"]) if i]
    if event_type == "reply.classified":
        return [data["reply_id"]]
    return []


def plan(
    event_type: str, data: Mapping[str, Any], day: date, refs: Mapping[str, Ref]
) -> tuple[list[tuple[Key, str, int]], dict[str, Ref]]:
    """(counter deltas, refs to write) for one event, given the refs `needed_refs` named (missing ones
    absent). The ref of `email.sent` is written only if the email has none yet (see CREATE_ONLY)."""
    deltas: list[tuple[Key, str, int]] = []
    writes: dict[str, Ref] = {}
    if event_type == "lead.unsubscribed" and not data.get("message_id"):
        return deltas, writes  # an API suppression: not an unsubscribe from a campaign's email
    if event_type in DIRECT:
        own = _ref_of(data, day)
        deltas.append((own.key(day), DIRECT[event_type], 1))
        if event_type in CREATE_ONLY:
            writes[data["message_id"]] = own
    elif event_type in ENGAGEMENT:
        kind = ENGAGEMENT[event_type]
        own = _ref_of(data, day)
        deltas.append((own.key(day), kind, 1))
        if data.get("machine"):
            deltas.append((own.key(day), f"{kind}_machine", 1))
        else:
            ref = refs.get(data["message_id"]) or own
            if not getattr(ref, kind):
                deltas.append((own.key(day), f"{kind}_unique", 1))
                counted: dict[str, Any] = {kind: 1}
                writes[data["message_id"]] = replace(ref, **counted)
    elif event_type == "reply.received":
        message_ref = refs.get(data.get("message_id") or "")
        if message_ref is not None:
            ref = replace(message_ref, day=day, opened=0, clicked=0, label=None)
        else:
            ref = Ref(data.get("campaign_id") or "", 0, "", data.get("inbox_id") or "", day)
        deltas.append((ref.key(), "replied", 1))
        existing = refs.get(data["reply_id"])
        writes[data["reply_id"]] = ref if existing is None else replace(ref, label=existing.label)
    elif event_type == "reply.classified":
        ref = refs.get(data["reply_id"]) or Ref(data.get("campaign_id") or "", 0, "", "", day)
        old, new = LABEL_COUNTERS.get(ref.label or ""), LABEL_COUNTERS.get(data["label"])
        if old:
            deltas.append((ref.key(), old, -1))
        if new:
            deltas.append((ref.key(), new, 1))
        writes[data["reply_id"]] = replace(ref, label=data["label"])
    return deltas, writes


# --- the live path ------------------------------------------------------------------------------------------


def _ref_from_row(row: AnalyticsRef) -> Ref:
    return Ref(
        row.campaign_id, row.step, row.variant, row.inbox_id, row.day, row.opened, row.clicked, row.label
    )


Counted = tuple[Tenant, str, Mapping[str, Any], datetime]  # tenant, event type, data, created_at


async def apply_events(session: AsyncSession, events: Iterable[Counted]) -> None:
    """Count events (in order) into the stored rollups: the refs they need are read once, row-locked on
    PostgreSQL, the events are folded in memory by `plan`, as `rebuild` does, and the sums are added with one
    upsert per table. Rows are written in key order, so concurrent writers lock them in the same order and
    cannot deadlock."""
    counted = [e for e in events if e[1] in COUNTED]
    if not counted:
        return
    # An `email.sent` ref is not read: it is written with ON CONFLICT DO NOTHING, which keeps a stored one as
    # it is, and a later event of the batch that needs it reads it anyway. Sends were a read per batch for
    # nothing.
    wanted: dict[Tenant, set[str]] = {}
    for tenant, event_type, data, _created_at in counted:
        ids = needed_refs(event_type, data)
        if ids:
            wanted.setdefault(tenant, set()).update(ids)
    fold = Fold()
    repository = RollupRepository(session)
    for tenant in sorted(wanted, key=_tenant_order):
        for row in await repository.lock_refs(tenant, sorted(wanted[tenant])):
            fold.load(tenant, row.ref_id, _ref_from_row(row))
    for tenant, event_type, data, created_at in counted:
        fold.add(tenant, event_type, data, created_at)
    created, updated = fold.changed_refs()
    await repository.write(created, updated, *fold.counter_rows())


def _tenant_order(tenant: Tenant) -> tuple[str, bool]:
    return tenant.workspace_id, tenant.livemode


def _coarse(fine: dict[str, Any]) -> dict[str, Any]:
    return {k: fine[k] for k in COARSE_FIELDS}


def _key_values(tenant: Tenant, key: Key) -> dict[str, Any]:
    campaign_id, step, variant, inbox_id, day = key
    return {
        "workspace_id": tenant.workspace_id,
        "livemode": tenant.livemode,
        "campaign_id": campaign_id,
        "step": step,
        "variant": variant,
        "inbox_id": inbox_id,
        "day": day,
    }


def _ref_values(tenant: Tenant, ref_id: str, ref: Ref) -> dict[str, Any]:
    return {
        "workspace_id": tenant.workspace_id,
        "livemode": tenant.livemode,
        "ref_id": ref_id,
        "campaign_id": ref.campaign_id,
        "step": ref.step,
        "variant": ref.variant,
        "inbox_id": ref.inbox_id,
        "day": ref.day,
        "opened": ref.opened,
        "clicked": ref.clicked,
        "label": ref.label,
    }


# --- the fold (live batches and rebuild) --------------------------------------------------------------------


class Fold:
    """Rollups of a stream of events, in memory: the counter sums they add, and the refs as they end up. The
    live path seeds it with the stored refs the events need (`load`) and writes what changed; `rebuild` folds
    the whole log from nothing and writes everything."""

    def __init__(self) -> None:
        self.counters: dict[tuple[Tenant, Key], dict[str, int]] = {}
        self.refs: dict[tuple[Tenant, str], Ref] = {}
        self._stored: set[tuple[Tenant, str]] = set()
        self._updated: set[tuple[Tenant, str]] = set()

    def load(self, tenant: Tenant, ref_id: str, ref: Ref) -> None:
        self.refs[(tenant, ref_id)] = ref
        self._stored.add((tenant, ref_id))

    def add(self, tenant: Tenant, event_type: str, data: Mapping[str, Any], created_at: datetime) -> None:
        if event_type not in COUNTED:
            return
        ids = needed_refs(event_type, data)
        known = {i: self.refs[(tenant, i)] for i in ids if (tenant, i) in self.refs}
        deltas, writes = plan(event_type, data, day_of(created_at), known)
        for ref_id, ref in writes.items():
            if event_type in CREATE_ONLY:
                self.refs.setdefault((tenant, ref_id), ref)
            else:
                self.refs[(tenant, ref_id)] = ref
                self._updated.add((tenant, ref_id))
        for key, column, n in deltas:
            row = self.counters.setdefault((tenant, key), {})
            row[column] = row.get(column, 0) + n

    def changed_refs(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(refs first made here — inserted only if still absent, like `email.sent`'s —, refs changed here),
        each in key order."""
        created, updated = [], []
        for tenant, ref_id in sorted(self.refs, key=lambda k: (*_tenant_order(k[0]), k[1])):
            if (tenant, ref_id) in self._updated:
                updated.append(_ref_values(tenant, ref_id, self.refs[(tenant, ref_id)]))
            elif (tenant, ref_id) not in self._stored:
                created.append(_ref_values(tenant, ref_id, self.refs[(tenant, ref_id)]))
        return created, updated

    def counter_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(analytics_daily rows, analytics_campaign_daily rows): every counter given, zeros included."""
        daily = [
            {**_key_values(t, key), **{c: 0 for c in COUNTERS}, **counts}
            for (t, key), counts in self.counters.items()
        ]
        coarse: dict[tuple, dict[str, Any]] = {}
        for row in daily:
            key = tuple(_coarse(row).values())
            into = coarse.setdefault(key, {**_coarse(row), **{c: 0 for c in COUNTERS}})
            for c in COUNTERS:
                into[c] += row[c]
        return daily, list(coarse.values())

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """(analytics_daily rows, analytics_campaign_daily rows, analytics_refs rows)"""
        daily, coarse = self.counter_rows()
        refs = [_ref_values(t, ref_id, ref) for (t, ref_id), ref in self.refs.items()]
        return daily, coarse, refs


async def write_fold(session: AsyncSession, fold: Fold, chunk: int = 1000) -> tuple[int, int]:
    daily, coarse, refs = fold.rows()
    await RollupRepository(session).insert(daily, coarse, refs, chunk)
    return len(daily), len(refs)


async def rebuild(
    session: AsyncSession, workspace_id: str | None = None, batch: int = 5000
) -> dict[str, int]:
    """Recompute the rollups (of one workspace, or all) from the event log, replacing what is stored."""
    repository = RollupRepository(session)
    await repository.wipe(workspace_id)
    fold = Fold()
    events = 0
    async for workspace, livemode, event_type, data, created_at, _id in repository.events(
        workspace_id, batch
    ):
        fold.add(Tenant(workspace, livemode), event_type, data, created_at)
        events += 1
    daily, refs = await write_fold(session, fold)
    await session.flush()
    return {"events": events, "rows": daily, "refs": refs}


async def apply_recorded(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    """The events subscriber (imail.wiring): the rollups owed by newly recorded events, in their
    transaction."""
    await apply_events(session, [(tenant_of(e), e.type, e.data, e.created_at) for e in events])
