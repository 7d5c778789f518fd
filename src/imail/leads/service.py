"""Lead rules: create (one, bulk, CSV), update, delete-and-suppress. Bulk work is set-based per batch: repeats
within the call found in memory, suppressions in one query, one multi-row insert that skips addresses already
in the campaign, the new leads' sequence states in one more; all in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.campaigns.repository import CampaignRepository
from imail.errors import Conflict, InvalidField, NotFound
from imail.kit.clock import utcnow
from imail.kit.ids import new_ids
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from imail.leads import timezones
from imail.leads.emails import InvalidEmail, normalize_email
from imail.leads.repository import LeadQuery, LeadRepository
from imail.leads.rows import (
    Prepared,
    RowInvalid,
    check_country,
    check_custom_variables,
    check_tags,
    check_timezone,
    from_fields,
    prepare,
)
from imail.leads.schemas import LeadBulkCreate, LeadCreate, LeadFilter, LeadTagChange, LeadUpdate
from imail.leads.tags import TagInvalid, normalize_tags
from imail.models import Campaign, CampaignStatus, Lead, LeadStatus
from imail.models.lead import InterestStatus, TimezoneSource
from imail.models.suppression import SuppressionReason, SuppressionType
from imail.sending import service as sending
from imail.suppressions import service as suppressions

CREATED, DUPLICATE, SUPPRESSED, INVALID = "created", "duplicate", "suppressed", "invalid"
ENROLL_SLICE = 5000  # leads per sending.enroll call (one bulk batch)


async def campaign_for_leads(session: AsyncSession, caller: Caller, campaign_id: str) -> Campaign:
    """The campaign leads are being added to: this tenant's, and not archived."""
    return await campaign_for_tenant(session, caller.tenant, campaign_id)


async def campaign_for_tenant(session: AsyncSession, tenant: Tenant, campaign_id: str) -> Campaign:
    campaign = await CampaignRepository(session, tenant).get(campaign_id)
    if campaign is None:
        ledger = "live" if tenant.livemode else "test"
        raise InvalidField(
            f"campaign_id: no campaign {campaign_id} in this workspace's {ledger} mode", "campaign_id"
        )
    if campaign.status == CampaignStatus.archived.value:
        raise Conflict(
            f"Campaign {campaign.id} is archived; leads can no longer be added to it", "campaign_id"
        )
    return campaign


def window_zone(campaign: Campaign) -> str | None:
    return campaign.send_window.get("timezone")


class LeadWriter:
    """Adds rows to one campaign, batch by batch, in the caller's transaction. Addresses are remembered across
    batches, so a repeated address counts once per call however far apart the repeats are."""

    def __init__(self, session: AsyncSession, tenant: Tenant, campaign: Campaign):
        self.session = session
        self.tenant = tenant
        self.campaign = campaign
        self.repo = LeadRepository(session, tenant)
        self.first_index: dict[str, int] = {}
        self.counts = {CREATED: 0, DUPLICATE: 0, SUPPRESSED: 0, INVALID: 0}

    def totals(self) -> dict[str, int]:
        return {
            "created": self.counts[CREATED],
            "duplicates": self.counts[DUPLICATE],
            "suppressed": self.counts[SUPPRESSED],
            "invalid": self.counts[INVALID],
        }

    async def write(
        self, rows: Sequence[tuple[int, Prepared | RowInvalid, int | None]]
    ) -> list[dict[str, Any]]:
        """Per-row results, in order, for rows of (index, prepared fields or the problem, file line or
        None)."""
        results: list[dict[str, Any]] = []
        candidates: list[tuple[dict[str, Any], Prepared]] = []
        first_index = self.first_index
        for index, outcome, line in rows:
            result: dict[str, Any] = {
                "index": index,
                "status": INVALID,
                "id": None,
                "email": None,
                "reason": None,
                "field": None,
            }
            if line is not None:
                result["line"] = line
            results.append(result)
            if isinstance(outcome, RowInvalid):
                result["reason"] = outcome.reason
                result["field"] = outcome.field
                continue
            result["email"] = outcome.email
            earlier = first_index.get(outcome.email)
            if earlier is not None:
                result["status"] = DUPLICATE
                result["reason"] = f"repeats the address of row {earlier}"
                continue
            first_index[outcome.email] = index
            candidates.append((result, outcome))

        # Addresses already in the campaign are found by the insert itself (the unique index on campaign and
        # address), not by a look-up first: one statement, and no query plan to go wrong on a table that a big
        # import is growing inside its transaction.
        blocked = await suppressions.suppressed_among(
            self.session, self.tenant, [p.email for _, p in candidates]
        )
        pending: list[dict[str, Any]] = []
        fields: list[Prepared] = []
        for result, prepared in candidates:
            match = blocked.get(prepared.email)
            if match is not None:
                result["status"] = SUPPRESSED
                result["reason"] = match.describe()
            else:
                pending.append(result)
                fields.append(prepared)
        ids = new_ids("lead", len(pending))
        inserted = await self.repo.insert_rows(self.campaign.id, list(zip(ids, fields)), utcnow())
        created = [(i, p.timezone) for i, p in zip(ids, fields) if i in inserted]
        await self.repo.insert_tags([(i, p.tags) for i, p in zip(ids, fields) if i in inserted and p.tags])
        # Sequence states for the new leads (the sending engine schedules step 1), in bounded slices.
        for start in range(0, len(created), ENROLL_SLICE):
            await sending.enroll(
                self.session, self.tenant, self.campaign, created[start : start + ENROLL_SLICE]
            )
        for lead_id, result in zip(ids, pending):
            if lead_id in inserted:
                result["status"] = CREATED
                result["id"] = lead_id
            else:
                result["status"] = DUPLICATE
                result["reason"] = "already a lead of this campaign"
        for result in results:
            self.counts[result["status"]] += 1
        return results


def prepare_row(row: Any, zone: str | None) -> Prepared | RowInvalid:
    try:
        return prepare(row, zone)
    except RowInvalid as problem:
        return problem


async def create_leads_bulk(session: AsyncSession, caller: Caller, body: LeadBulkCreate) -> dict[str, Any]:
    campaign = await campaign_for_leads(session, caller, body.campaign_id)
    zone = window_zone(campaign)
    writer = LeadWriter(session, caller.tenant, campaign)
    results = await writer.write([(i, prepare_row(row, zone), None) for i, row in enumerate(body.leads)])
    return {
        "object": "lead_bulk_result",
        "campaign_id": campaign.id,
        "total": len(results),
        **writer.totals(),
        "results": results,
    }


async def create_lead(session: AsyncSession, caller: Caller, body: LeadCreate) -> Lead:
    campaign = await campaign_for_leads(session, caller, body.campaign_id)
    try:
        prepared = from_fields(
            body.email,
            body.first_name,
            body.last_name,
            body.company,
            body.title,
            body.phone,
            body.country,
            body.timezone,
            body.custom_variables,
            window_zone(campaign),
            body.tags,
        )
    except RowInvalid as problem:
        raise InvalidField(problem.reason, problem.field) from None
    repo = LeadRepository(session, caller.tenant)
    existing = await repo.existing_emails(campaign.id, [prepared.email])
    if existing:
        raise Conflict(
            f"{prepared.email} is already a lead of campaign {campaign.id} ({existing[prepared.email]})",
            "email",
        )
    blocked = await suppressions.is_suppressed(session, caller.tenant, prepared.email)
    if blocked is not None:
        raise Conflict(f"{prepared.email} cannot be added: {blocked.describe()}", "email")
    lead = repo.new(
        campaign_id=campaign.id,
        email=prepared.email,
        first_name=prepared.first_name,
        last_name=prepared.last_name,
        company=prepared.company,
        title=prepared.title,
        phone=prepared.phone,
        country=prepared.country,
        timezone=prepared.timezone,
        timezone_source=prepared.timezone_source,
        custom_variables=prepared.custom_variables,
        status=LeadStatus.active.value,
    )
    lead.tag_rows = [repo.tag_row(lead.id, tag) for tag in prepared.tags]
    try:
        async with session.begin_nested():
            await repo.add(lead)
    except IntegrityError:
        raise Conflict(f"{prepared.email} is already a lead of campaign {campaign.id}", "email") from None
    await sending.enroll(session, caller.tenant, campaign, [(lead.id, lead.timezone)])
    return lead


async def find_lead(session: AsyncSession, tenant: Tenant, lead_id: str) -> Lead | None:
    return await LeadRepository(session, tenant).get(lead_id)


async def get_lead(session: AsyncSession, caller: Caller, lead_id: str) -> Lead:
    lead = await LeadRepository(session, caller.tenant).get(lead_id)
    if lead is None:
        raise NotFound(f"No lead {lead_id}")
    return lead


def lead_query(filters: LeadFilter, field: str = "") -> LeadQuery:
    """The filters checked and normalized (400 naming the bad one); `field` prefixes the names in messages."""
    email = filters.email
    if email is not None:
        try:
            email = normalize_email(email)
        except InvalidEmail as exc:
            raise InvalidField(f"{field}email: {exc}", f"{field}email") from None
    try:
        tags = normalize_tags(filters.tags, f"{field}tags", limit=None)
    except TagInvalid as problem:
        raise InvalidField(problem.reason, problem.field) from None
    return LeadQuery(
        campaign_id=filters.campaign_id,
        status=filters.status.value if filters.status else None,
        interest_status=filters.interest_status.value if filters.interest_status else None,
        email=email,
        tags=tuple(tags),
        verification_status=filters.verification_status,
    )


async def list_leads(
    session: AsyncSession, caller: Caller, params: PageParams, filters: LeadFilter
) -> list[Lead]:
    return await LeadRepository(session, caller.tenant).list_page(params, lead_query(filters))


async def change_tags(session: AsyncSession, tenant: Tenant, change: LeadTagChange) -> dict[str, Any]:
    """Add and remove tags on every lead the filter matches (in the caller's transaction): a plain service
    function, so a background job can run the same change. A tag both added and removed is an error."""
    query = lead_query(change.filter, "filter.")
    try:
        add = normalize_tags(change.add, "add", limit=None)
        remove = normalize_tags(change.remove, "remove", limit=None)
    except TagInvalid as problem:
        raise InvalidField(problem.reason, problem.field) from None
    if not add and not remove:
        raise InvalidField("give tags to add or to remove", "add")
    both = sorted(set(add) & set(remove))
    if both:
        raise InvalidField(f"{both[0]!r} is both added and removed; choose one", "remove")
    matched, added, removed = await LeadRepository(session, tenant).change_tags(query, add, remove)
    return {"object": "lead_tag_change", "matched": matched, "added": added, "removed": removed}


NOT_NULL = ("custom_variables", "status", "tags")
PAUSABLE = (LeadStatus.active.value, LeadStatus.paused.value)


async def update_lead(session: AsyncSession, caller: Caller, lead_id: str, body: LeadUpdate) -> Lead:
    lead = await get_lead(session, caller, lead_id)
    changes = body.model_dump(exclude_unset=True)
    for name in NOT_NULL:
        if name in changes and changes[name] is None:
            raise InvalidField(f"{name} cannot be null", name)

    # Check everything first: a rejected PATCH changes nothing.
    try:
        country = check_country(body.country) if body.country else None
        explicit_zone = check_timezone(body.timezone) if body.timezone else None
        custom = check_custom_variables(body.custom_variables) if body.custom_variables else {}
        tags = check_tags(body.tags)
    except RowInvalid as problem:
        raise InvalidField(problem.reason, problem.field) from None
    new_status = changes.get("status")
    if new_status is not None and new_status != lead.status:
        if lead.status not in (*PAUSABLE, LeadStatus.suppressed.value):
            raise Conflict(
                f"Lead {lead.id} is {lead.status}; only active or paused leads can be paused or resumed",
                "status",
            )
        blocked = await suppressions.is_suppressed(session, caller.tenant, lead.email)
        if blocked is not None:
            raise Conflict(
                f"Lead {lead.id} cannot be {new_status}: {blocked.describe()}; remove the entry first "
                f"(DELETE /v1/suppressions/{blocked.suppression_id})",
                "status",
            )

    for name in ("first_name", "last_name", "company", "title", "phone"):
        if name in changes:
            setattr(lead, name, changes[name] or None)
    if "country" in changes:
        lead.country = country
    if "custom_variables" in changes:
        lead.custom_variables = custom
    if "tags" in changes:
        repo = LeadRepository(session, caller.tenant)
        # Rows kept for tags that stay: the unit of work deletes only what went and inserts only what came.
        kept = {row.tag: row for row in lead.tag_rows}
        lead.tag_rows = [kept.get(tag) or repo.tag_row(lead.id, tag) for tag in tags]
    if "timezone" in changes or (
        ("phone" in changes or "country" in changes) and lead.timezone_source != TimezoneSource.explicit.value
    ):
        campaign = await CampaignRepository(session, caller.tenant).get(lead.campaign_id)
        zone = window_zone(campaign) if campaign is not None else None
        explicit = explicit_zone if "timezone" in changes else None
        resolved, source = timezones.resolve(explicit, lead.country, lead.phone, zone)
        lead.timezone, lead.timezone_source = resolved, source.value
    if new_status is not None:
        lead.status = new_status
    now = utcnow()
    if "interest_status" in changes and changes["interest_status"] != lead.interest_status:
        lead.interest_status = changes["interest_status"]
        lead.interest_updated_at = now
        if lead.interest_status == InterestStatus.unsubscribed.value:
            await session.flush()
            await suppressions.suppress_through_api(
                session, caller.tenant, lead.email, SuppressionReason.unsubscribed
            )
            lead.status = LeadStatus.unsubscribed.value
    lead.updated_at = now
    await session.flush()
    return lead


async def delete_lead(session: AsyncSession, caller: Caller, lead_id: str) -> dict[str, Any]:
    """Remove the lead and put its address on the suppression list (GDPR erasure: never emailed again)."""
    lead = await get_lead(session, caller, lead_id)
    email = lead.email
    await LeadRepository(session, caller.tenant).delete(lead)
    await session.flush()
    entry = await suppressions.suppress(
        session, caller.tenant, SuppressionType.email, email, SuppressionReason.lead_deleted
    )
    return {"id": lead_id, "deleted": True, "suppression_id": entry.id}
