"""Lead SQL. Bulk paths are set-based: one query to find existing addresses, one multi-row insert per
batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload

from imail.kit.clock import utcnow
from imail.kit.pagination import PageParams
from imail.kit.repository import TenantRepository
from imail.kit.sql import among, is_postgres, rowcount
from imail.models import Lead, LeadStatus, LeadTag
from imail.models.base import UTCDateTime
from imail.models.lead import TimezoneSource
from imail.models.suppression import SuppressionType

if TYPE_CHECKING:
    from imail.leads.rows import Prepared

COPY_COLUMNS = (
    "id",
    "workspace_id",
    "livemode",
    "campaign_id",
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "timezone",
    "timezone_source",
    "custom_variables",
    "status",
    "created_at",
    "updated_at",
)

_PG_BULK_INSERT = text(
    """
    INSERT INTO leads (id, workspace_id, livemode, campaign_id, email, first_name, last_name, company, title,
                       phone, country, timezone, timezone_source, custom_variables, status, created_at,
                       updated_at)
    SELECT r.id, :workspace_id, :livemode, :campaign_id, r.email, r.first_name, r.last_name, r.company,
           r.title, r.phone, r.country, r.timezone, r.timezone_source, CAST(r.custom_variables AS jsonb),
           :status, :now, :now
    FROM unnest(:ids, :emails, :first_names, :last_names, :companies, :titles, :phones, :countries,
                :timezones, :timezone_sources, :custom_variables)
         AS r(id, email, first_name, last_name, company, title, phone, country, timezone, timezone_source,
              custom_variables)
    ON CONFLICT (campaign_id, email) DO NOTHING
    RETURNING id
    """
).bindparams(
    *(
        bindparam(name, type_=ARRAY(String))
        for name in (
            "ids",
            "emails",
            "first_names",
            "last_names",
            "companies",
            "titles",
            "phones",
            "countries",
            "timezones",
            "timezone_sources",
            "custom_variables",
        )
    ),
    bindparam("now", type_=UTCDateTime()),
)


# Every column of a lead, in the order an export writes them (custom variables and tags follow).
EXPORT_COLUMNS = (
    "id",
    "campaign_id",
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "timezone",
    "timezone_source",
    "status",
    "interest_status",
    "verification_status",
    "verification_reasons",
    "verified_at",
    "livemode",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class LeadQuery:
    """The filters of a lead list, export or bulk change, normalized; every one given must hold."""

    campaign_id: str | None = None
    status: str | None = None
    interest_status: str | None = None
    email: str | None = None
    tags: tuple[str, ...] = ()  # leads carrying every one of these
    verification_status: str | None = None  # a status, or "unverified" (never verified)


def _like_domain(domain: str) -> str:
    return "%@" + domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class LeadRepository(TenantRepository[Lead]):
    model = Lead

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.session)

    def _where(self, stmt: Select, query: LeadQuery) -> Select:
        if query.campaign_id is not None:
            stmt = stmt.where(Lead.campaign_id == query.campaign_id)
        if query.status is not None:
            stmt = stmt.where(Lead.status == query.status)
        if query.interest_status is not None:
            stmt = stmt.where(Lead.interest_status == query.interest_status)
        if query.email is not None:
            stmt = stmt.where(Lead.email == query.email)
        if query.verification_status == "unverified":
            stmt = stmt.where(Lead.verification_status.is_(None))
        elif query.verification_status is not None:
            stmt = stmt.where(Lead.verification_status == query.verification_status)
        for tag in query.tags:
            # One EXISTS per tag, answered by lead_tags' primary key (lead_id, tag).
            stmt = stmt.where(exists().where(LeadTag.lead_id == Lead.id, LeadTag.tag == tag))
        return stmt

    def matching(self, query: LeadQuery, *entities: Any) -> Select:
        return self._where(self.select(*entities), query)

    async def get(self, object_id: str) -> Lead | None:
        stmt = self.select().where(Lead.id == object_id).options(selectinload(Lead.tag_rows))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(self, params: PageParams, query: LeadQuery) -> list[Lead]:
        return await self.page(params, self.matching(query).options(selectinload(Lead.tag_rows)))

    def tag_row(self, lead_id: str, tag: str) -> LeadTag:
        return LeadTag(
            lead_id=lead_id, tag=tag, workspace_id=self.tenant.workspace_id, livemode=self.tenant.livemode
        )

    async def insert_tags(self, rows: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Tags of new leads (lead id, its normalized tags): one multi-row insert."""
        values = [
            {
                "lead_id": lead_id,
                "tag": tag,
                "workspace_id": self.tenant.workspace_id,
                "livemode": self.tenant.livemode,
            }
            for lead_id, tags in rows
            for tag in tags
        ]
        if values:
            await self.session.execute(insert(LeadTag.__table__), values)

    async def change_tags(
        self, query: LeadQuery, add: Sequence[str], remove: Sequence[str]
    ) -> tuple[int, int, int]:
        """Add and remove tags on every matching lead, set-based (one statement per tag added, one for all
        removed): (leads matched, tags added, tags removed)."""
        matched = (await self.session.execute(self.matching(query, func.count(Lead.id)))).scalar_one()
        added = removed = 0
        if remove:
            ids = self.matching(query, Lead.id)
            stmt = delete(LeadTag).where(
                LeadTag.workspace_id == self.tenant.workspace_id,
                LeadTag.livemode == self.tenant.livemode,
                LeadTag.tag.in_(list(remove)),
                LeadTag.lead_id.in_(ids),
            )
            removed = rowcount(await self.session.execute(stmt.execution_options(synchronize_session=False)))
        for tag in add:
            source = self.matching(
                query, Lead.id, Lead.workspace_id, Lead.livemode, literal(tag, String(64))
            ).where(~exists().where(LeadTag.lead_id == Lead.id, LeadTag.tag == tag))
            adding = insert(LeadTag).from_select(["lead_id", "workspace_id", "livemode", "tag"], source)
            added += rowcount(await self.session.execute(adding))
        return matched, added, removed

    async def export_batch(self, query: LeadQuery, after_id: str | None, limit: int) -> list[Any]:
        """Up to `limit` matching leads after `after_id`, oldest first, as plain rows (EXPORT_COLUMNS and
        custom_variables): a keyset page, so an export reads the table in bounded steps."""
        table = Lead.__table__.c
        stmt = self.matching(query, *(table[name] for name in EXPORT_COLUMNS), table.custom_variables)
        if after_id is not None:
            stmt = stmt.where(Lead.id > after_id)
        stmt = stmt.order_by(Lead.id).limit(limit)
        return list((await self.session.execute(stmt)).all())

    async def tags_of(self, lead_ids: Sequence[str]) -> dict[str, list[str]]:
        """lead id → its tags (sorted), for the given leads (one query)."""
        if not lead_ids:
            return {}
        stmt = (
            select(LeadTag.lead_id, LeadTag.tag)
            .where(
                LeadTag.workspace_id == self.tenant.workspace_id,
                LeadTag.livemode == self.tenant.livemode,
                among(LeadTag.lead_id, list(lead_ids)),
            )
            .order_by(LeadTag.lead_id, LeadTag.tag)
        )
        found: dict[str, list[str]] = {}
        for lead_id, tag in (await self.session.execute(stmt)).all():
            found.setdefault(lead_id, []).append(tag)
        return found

    async def custom_variable_keys(self, query: LeadQuery) -> list[str]:
        """Every custom variable name the matching leads use, sorted: one query (the export's header)."""
        if self.is_postgres:
            key = func.jsonb_object_keys(Lead.custom_variables).label("key")
            inner = self.matching(query, key).subquery()
            stmt = select(inner.c.key).distinct()
        else:
            each = func.json_each(Lead.custom_variables).table_valued("key").alias("each")
            stmt = self.matching(query, each.c.key).select_from(Lead).join(each, true()).distinct()
        return sorted(str(row[0]) for row in (await self.session.execute(stmt)).all())

    async def existing_emails(self, campaign_id: str, emails: Sequence[str]) -> dict[str, str]:
        """email → lead id for the addresses already in the campaign (one query)."""
        if not emails:
            return {}
        if self.is_postgres:
            # A join against the unnested array, not `email = ANY(array)`: the latter is checked row by row
            # against the whole array, quadratic while a big import grows the table inside one transaction.
            wanted = (
                func.unnest(bindparam("emails", list(emails), type_=ARRAY(String)))
                .table_valued("email")
                .render_derived(name="wanted")
            )
            stmt = (
                self.select(Lead.email, Lead.id)
                .join(wanted, Lead.email == wanted.c.email)
                .where(Lead.campaign_id == campaign_id)
            )
        else:
            stmt = self.select(Lead.email, Lead.id).where(
                Lead.campaign_id == campaign_id, among(Lead.email, list(emails))
            )
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}

    async def insert_rows(
        self, campaign_id: str, rows: Sequence[tuple[str, Prepared]], now: datetime
    ) -> set[str]:
        """Insert the rows in one statement; returns the ids inserted. A row whose address is already in the
        campaign (before, or added by a concurrent call) is skipped, not an error."""
        if not rows:
            return set()
        if self.is_postgres:
            if await self._copy(campaign_id, rows, now):
                return {lead_id for lead_id, _ in rows}
            params = {
                "workspace_id": self.tenant.workspace_id,
                "livemode": self.tenant.livemode,
                "campaign_id": campaign_id,
                "status": LeadStatus.active.value,
                "now": now,
                "ids": [lead_id for lead_id, _ in rows],
                "emails": [p.email for _, p in rows],
                "first_names": [p.first_name for _, p in rows],
                "last_names": [p.last_name for _, p in rows],
                "companies": [p.company for _, p in rows],
                "titles": [p.title for _, p in rows],
                "phones": [p.phone for _, p in rows],
                "countries": [p.country for _, p in rows],
                "timezones": [p.timezone for _, p in rows],
                "timezone_sources": [p.timezone_source for _, p in rows],
                "custom_variables": [orjson.dumps(p.custom_variables).decode() for _, p in rows],
            }
            result = await self.session.execute(_PG_BULK_INSERT, params)
            return {row[0] for row in result.all()}
        table = Lead.__table__
        stmt = (
            sqlite_insert(table)
            .on_conflict_do_nothing(index_elements=["campaign_id", "email"])
            .returning(table.c.id)
        )
        base = {
            "workspace_id": self.tenant.workspace_id,
            "livemode": self.tenant.livemode,
            "campaign_id": campaign_id,
            "status": LeadStatus.active.value,
            "interest_status": None,
            "interest_updated_at": None,
            "created_at": now,
            "updated_at": now,
        }
        values = [
            {
                **base,
                "id": lead_id,
                "email": p.email,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "company": p.company,
                "title": p.title,
                "phone": p.phone,
                "country": p.country,
                "timezone": p.timezone,
                "timezone_source": p.timezone_source,
                "custom_variables": p.custom_variables,
            }
            for lead_id, p in rows
        ]
        result = await self.session.execute(stmt, values)
        return {row[0] for row in result.all()}

    async def _copy(self, campaign_id: str, rows: Sequence[tuple[str, Prepared]], now: datetime) -> bool:
        """PostgreSQL's COPY into leads, inside a savepoint: the fast path when every address is new. False
        (nothing written) if one is already in the campaign; the caller then inserts with ON CONFLICT."""
        connection = await self.session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        if driver is None:  # an open connection always has one
            raise RuntimeError("the connection has no driver connection")
        tenant = self.tenant
        status = LeadStatus.active.value
        records = [
            (
                lead_id,
                tenant.workspace_id,
                tenant.livemode,
                campaign_id,
                p.email,
                p.first_name,
                p.last_name,
                p.company,
                p.title,
                p.phone,
                p.country,
                p.timezone,
                p.timezone_source,
                orjson.dumps(p.custom_variables).decode(),
                status,
                now,
                now,
            )
            for lead_id, p in rows
        ]
        # The savepoint is plain SQL through SQLAlchemy's connection: that also makes sure the transaction has
        # begun on the driver connection before COPY runs on it (the session's own savepoints are emitted
        # lazily, on its next statement, and COPY bypasses it).
        await connection.exec_driver_sql("SAVEPOINT lead_copy")
        try:
            await driver.copy_records_to_table("leads", records=records, columns=COPY_COLUMNS)
        except asyncpg.UniqueViolationError:
            await connection.exec_driver_sql("ROLLBACK TO SAVEPOINT lead_copy")
            await connection.exec_driver_sql("RELEASE SAVEPOINT lead_copy")
            return False
        await connection.exec_driver_sql("RELEASE SAVEPOINT lead_copy")
        return True

    async def verification_targets(
        self, campaign_id: str | None, lead_ids: Sequence[str] | None, only_unverified: bool
    ) -> list[tuple[str, str]]:
        """(id, email) of the leads to verify: a campaign's, given ones, or both (the given ones in the
        campaign)."""
        stmt = self.select(Lead.id, Lead.email)
        if campaign_id is not None:
            stmt = stmt.where(Lead.campaign_id == campaign_id)
        if lead_ids is not None:
            stmt = stmt.where(among(Lead.id, list(lead_ids)))
        if only_unverified:
            stmt = stmt.where(Lead.verification_status.is_(None))
        return [(row[0], row[1]) for row in (await self.session.execute(stmt.order_by(Lead.id))).all()]

    async def set_verification(self, rows: Sequence[tuple[str, str, list[str]]], now: datetime) -> None:
        """(lead id, status, reasons) of verified leads: one executemany; a lead deleted meanwhile is
        skipped."""
        if not rows:
            return
        table = Lead.__table__
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.workspace_id == self.tenant.workspace_id,
                table.c.livemode == self.tenant.livemode,
            )
            .values(
                verification_status=bindparam("b_status"),
                verification_reasons=bindparam("b_reasons"),
                verified_at=now,
                updated_at=now,
            )
        )
        await self.session.execute(
            stmt,
            [
                {"b_id": lead_id, "b_status": status, "b_reasons": reasons}
                for lead_id, status, reasons in rows
            ],
            execution_options={"synchronize_session": False},
        )

    def _matching(self, type_: str, value: str):
        if type_ == SuppressionType.email.value:
            return Lead.email == value
        return Lead.email.like(_like_domain(value), escape="\\")

    async def mark_suppressed(self, type_: str, values: Sequence[str]) -> None:
        """Leads still to be emailed at these suppressed addresses (or domains) become `suppressed`: one
        statement."""
        if not values:
            return
        matching: ColumnElement[bool]
        if type_ == SuppressionType.email.value:
            matching = among(Lead.email, sorted(set(values)))
        else:
            matching = or_(*(self._matching(type_, value) for value in sorted(set(values))))
        stmt = (
            update(Lead)
            .where(
                self.pin(Lead),
                matching,
                Lead.status.in_([LeadStatus.active.value, LeadStatus.paused.value]),
            )
            .values(status=LeadStatus.suppressed.value, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def with_email(self, email: str) -> list[tuple[str, str]]:
        """(lead id, campaign id) of every lead at this address, oldest first."""
        stmt = (
            self.select(Lead.id, Lead.campaign_id)
            .where(Lead.email == email)
            .order_by(Lead.created_at, Lead.id)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    async def suppressed_by(self, type_: str, value: str) -> list[tuple[str, str]]:
        stmt = self.select(Lead.id, Lead.email).where(
            self._matching(type_, value), Lead.status == LeadStatus.suppressed.value
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    async def reactivate(self, lead_ids: Sequence[str]) -> None:
        if not lead_ids:
            return
        stmt = (
            update(Lead)
            .where(
                self.pin(Lead),
                among(Lead.id, list(lead_ids)),
            )
            .values(status=LeadStatus.active.value, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def refresh_fallback_zones(self, campaign_id: str, zone: str, source: str) -> None:
        """Leads whose zone came from their campaign (or nothing) follow the campaign's new window zone."""
        stmt = (
            update(Lead)
            .where(
                self.pin(Lead),
                Lead.campaign_id == campaign_id,
                Lead.timezone_source.in_([TimezoneSource.campaign.value, TimezoneSource.default.value]),
            )
            .values(timezone=zone, timezone_source=source, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)
