"""Suppression rules. Entries are per workspace and per ledger (live or test), like every tenant row: a
test-mode entry never blocks a live send and the reverse. An address entry matches that address; a domain
entry matches every address at exactly that domain.

Other domains call `suppress` or `add_suppression` (lead deleted, unsubscribe, hard bounce) and
`suppressed_among` / `is_suppressed` (bulk import, the sending engine's last check before a send)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.db import Database
from imail.errors import Conflict, InvalidField, MissingField, NotFound
from imail.events.service import record_event
from imail.kit import csv_export
from imail.kit.deferred import collecting
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from imail.leads.emails import InvalidEmail, domain_of, normalize_domain, normalize_email
from imail.leads.repository import LeadRepository
from imail.models import Suppression
from imail.models.suppression import SuppressionReason, SuppressionType
from imail.suppressions.repository import EXPORT_COLUMNS, SuppressionRepository
from imail.suppressions.schemas import SuppressionCreate


@dataclass(frozen=True, slots=True)
class Match:
    suppression_id: str
    type: str
    value: str

    def describe(self) -> str:
        what = "address" if self.type == SuppressionType.email.value else f"domain {self.value}"
        return f"the {what} is on the suppression list ({self.suppression_id})"


async def suppressed_among(session: AsyncSession, tenant: Tenant, emails: Sequence[str]) -> dict[str, Match]:
    """Which of these (normalized) addresses are suppressed, by address or by domain: one query."""
    if not emails:
        return {}
    rows = await SuppressionRepository(session, tenant).matching(emails, [domain_of(e) for e in emails])
    by_email = {
        value: Match(sid, kind, value) for sid, kind, value in rows if kind == SuppressionType.email.value
    }
    by_domain = {
        value: Match(sid, kind, value) for sid, kind, value in rows if kind == SuppressionType.domain.value
    }
    found: dict[str, Match] = {}
    for email in emails:
        match = by_email.get(email) or by_domain.get(domain_of(email))
        if match is not None:
            found[email] = match
    return found


async def is_suppressed(session: AsyncSession, tenant: Tenant, email: str) -> Match | None:
    return (await suppressed_among(session, tenant, [email])).get(email)


async def suppress(
    session: AsyncSession, tenant: Tenant, type_: SuppressionType, value: str, reason: SuppressionReason
) -> Suppression:
    """Add an entry unless one exists (concurrent callers are safe), and mark matching leads suppressed."""
    entry = await SuppressionRepository(session, tenant).ensure(type_.value, value, reason.value)
    await LeadRepository(session, tenant).mark_suppressed(type_.value, [value])
    return entry


_BATCH_KEY = "imail.suppressions.batch"


async def add_suppression(
    session: AsyncSession, tenant: Tenant, type_: SuppressionType, value: str, reason: SuppressionReason
) -> None:
    """`suppress`, for callers that need no entry back: at once, or inside `batched_suppressions` with the
    block's others when it ends (the first reason given for an address wins, as with entries added one by
    one)."""
    pending = session.info.get(_BATCH_KEY)
    if pending is None:
        await session.flush()  # the leads' pending changes first: the update below only sees what is written
        await suppress(session, tenant, type_, value, reason)
        return
    pending.setdefault(tenant, {}).setdefault((type_.value, value), reason.value)


@asynccontextmanager
async def batched_suppressions(session: AsyncSession) -> AsyncIterator[None]:
    """Entries added with `add_suppression` inside the block are written when it ends without an error: the
    block's pending changes flushed, then per workspace one insert of the entries and one update of their
    leads. One by one, each address cost three round trips, and each of them flushed the pending changes of
    the batch so far row by row (an inbound batch of bounces and unsubscribe requests). Nothing in the block
    reads them back."""
    pending: dict[Tenant, dict[tuple[str, str], str]] | None
    async with collecting(session, _BATCH_KEY, dict[Tenant, dict[tuple[str, str], str]]) as pending:
        yield
    if not pending:
        return
    await session.flush()
    for tenant, entries in pending.items():
        await SuppressionRepository(session, tenant).add_missing([(t, v, r) for (t, v), r in entries.items()])
        leads = LeadRepository(session, tenant)
        for type_ in sorted({t for t, _ in entries}):
            await leads.mark_suppressed(type_, [v for t, v in entries if t == type_])


_OPTED_OUT_KEY = "imail.suppressions.opted_out"


_KNOWN_KEY = "imail.suppressions.known"


def _known(session: AsyncSession) -> dict[tuple[Tenant, str], bool]:
    """Whether addresses were suppressed when `preload_opt_outs` read them, for this transaction only."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_KNOWN_KEY)
    if cached is None or cached[0] is not transaction:
        cached = (transaction, {})
        session.info[_KNOWN_KEY] = cached
    return cached[1]


async def preload_opt_outs(session: AsyncSession, tenant: Tenant, emails: Sequence[str]) -> None:
    """Read in one query which of these addresses are suppressed, for the `first_opt_out` calls about them
    that follow in this transaction (an inbound batch's unsubscribes), instead of one query each."""
    known = _known(session)
    wanted = sorted({email for email in emails if (tenant, email) not in known})
    found = await suppressed_among(session, tenant, wanted)
    for email in wanted:
        known[(tenant, email)] = email in found


async def first_opt_out(session: AsyncSession, tenant: Tenant, email: str) -> bool:
    """Whether an opt-out of this address is its first: not suppressed yet (by address or domain), nor
    suppressed or opted out earlier in this transaction. `lead.unsubscribed` fires only then, once per
    address, whichever channels the recipient uses. Reads no pending change, so it is safe inside an inbound
    batch."""
    key = (tenant, email)
    seen: set = session.info.setdefault(_OPTED_OUT_KEY, set())
    if key in seen:
        return False
    seen.add(key)
    pending = session.info.get(_BATCH_KEY) or {}
    if (SuppressionType.email.value, email) in pending.get(tenant, {}):
        return False
    preloaded = _known(session).get(key)
    if preloaded is not None:
        return not preloaded
    return await is_suppressed(session, tenant, email) is None


async def suppress_through_api(
    session: AsyncSession, tenant: Tenant, email: str, reason: SuppressionReason
) -> Suppression:
    """An address suppressed through the API (`POST /v1/suppressions`, a lead's interest status set to
    `unsubscribed`): `suppress`, and `lead.unsubscribed` with source `api` for each lead at that address when
    it was not suppressed before. These events name no sent email, so campaign analytics do not count them as
    unsubscribes (see imail.analytics.rollups)."""
    first = await first_opt_out(session, tenant, email)
    entry = await suppress(session, tenant, SuppressionType.email, email, reason)
    if first:
        for lead_id, campaign_id in await LeadRepository(session, tenant).with_email(email):
            await record_event(
                session,
                tenant,
                "lead.unsubscribed",
                {"email": email, "source": "api", "lead_id": lead_id, "campaign_id": campaign_id},
            )
    return entry


async def create_suppression(session: AsyncSession, caller: Caller, body: SuppressionCreate) -> Suppression:
    if body.email is None and body.domain is None:
        raise MissingField(
            'email or domain is required: {"email": "ana@example.com"} or {"domain": "example.com"}', "email"
        )
    if body.email is not None and body.domain is not None:
        raise InvalidField("Give either email or domain, not both: one entry per call", "domain")
    try:
        if body.email is not None:
            type_, value = SuppressionType.email, normalize_email(body.email)
        else:
            type_, value = SuppressionType.domain, normalize_domain(body.domain or "")
    except InvalidEmail as exc:
        field = "email" if body.email is not None else "domain"
        raise InvalidField(f"{field}: {exc}", field) from None
    existing = await SuppressionRepository(session, caller.tenant).find(type_.value, value)
    if existing is not None:
        raise Conflict(f"{value} is already suppressed ({existing.id})", type_.value)
    if type_ is SuppressionType.email:
        return await suppress_through_api(session, caller.tenant, value, SuppressionReason.manual)
    return await suppress(session, caller.tenant, type_, value, SuppressionReason.manual)


async def get_suppression(session: AsyncSession, caller: Caller, suppression_id: str) -> Suppression:
    entry = await SuppressionRepository(session, caller.tenant).get(suppression_id)
    if entry is None:
        raise NotFound(f"No suppression {suppression_id}")
    return entry


async def delete_suppression(session: AsyncSession, caller: Caller, suppression_id: str) -> Suppression:
    """Remove an entry; leads it had suppressed, and that no other entry covers, become active again."""
    entry = await get_suppression(session, caller, suppression_id)
    await SuppressionRepository(session, caller.tenant).delete(entry)
    await session.flush()
    leads = LeadRepository(session, caller.tenant)
    candidates = await leads.suppressed_by(entry.type, entry.value)
    still = await suppressed_among(session, caller.tenant, sorted({email for _, email in candidates}))
    await leads.reactivate([lead_id for lead_id, email in candidates if email not in still])
    return entry


def export_suppressions(
    database: Database, tenant: Tenant, type_: str | None, value: str | None, reason: str | None
) -> AsyncIterator[bytes]:
    """The matching entries as CSV bytes, oldest first, read in keyset pages (constant memory)."""
    value = value.strip().lower() if value is not None else None

    async def fetch(session: AsyncSession, after: str | None, limit: int) -> list[Any]:
        return await SuppressionRepository(session, tenant).export_batch(type_, value, reason, after, limit)

    def to_cells(row: Any) -> list[str]:
        return [csv_export.safe_cell(getattr(row, name)) for name in EXPORT_COLUMNS]

    return csv_export.keyset_export(database.read, EXPORT_COLUMNS, fetch, to_cells)


async def list_suppressions(
    session: AsyncSession,
    caller: Caller,
    params: PageParams,
    type_: str | None,
    value: str | None,
    reason: str | None,
) -> list[Suppression]:
    if value is not None:
        value = value.strip().lower()
    return await SuppressionRepository(session, caller.tenant).list_page(params, type_, value, reason)
