"""The SQL of webhooks: tenant-scoped repositories for the API and the fan-out, and the workers' queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, String, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.pagination import PageParams
from imail.kit.repository import Repository, TenantRepository
from imail.kit.sql import among, is_postgres, rowcount
from imail.models import Event, WebhookDelivery, WebhookEndpoint

D = WebhookDelivery
E = Event
W = WebhookEndpoint


class WebhookMaintenance(Repository[WebhookEndpoint]):
    """Every endpoint, across tenants, for `imail secrets rotate` (operators only)."""

    model = WebhookEndpoint


class WebhookEndpointRepository(TenantRepository[WebhookEndpoint]):
    model = WebhookEndpoint

    def select(self, *entities: Any) -> Select:
        """The tenant's endpoints, deleted ones left out."""
        return super().select(*entities).where(W.status != "deleted")

    async def enabled_subscriptions(self) -> list[tuple[str, list[str], date]]:
        """(id, events, api_version) of the tenant's enabled endpoints: all the fan-out needs."""
        stmt = self.select(W.id, W.events, W.api_version).where(W.status == "enabled").order_by(W.id)
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]


class DeliveryRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def fail_pending(self, webhook_id: str, reason: str, now: datetime) -> None:
        await self.session.execute(
            update(D)
            .where(self.pin(D))
            .where(D.webhook_id == webhook_id, D.status == "pending")
            .values(status="failed", next_attempt_at=None, last_error=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def page_for(
        self, webhook_id: str, params: PageParams, status: str | None
    ) -> list[WebhookDelivery]:
        stmt = self.select().where(D.webhook_id == webhook_id)
        if status is not None:
            stmt = stmt.where(D.status == status)
        return await self.page(params, stmt)


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """A claimed delivery with everything needed to send it."""

    delivery_id: str
    attempts: int
    webhook_id: str
    url: str
    secret_encrypted: str  # opened by the worker only to sign (webhooks.signing.open_secret)
    endpoint_status: str
    event_id: str
    event_type: str
    event_created_at: datetime
    livemode: bool
    data: dict[str, Any]
    endpoint_failing_since: datetime | None = None


class DeliveryQueue(Repository[WebhookDelivery]):
    """The workers' view: due deliveries across every tenant, claimed under a lease."""

    model = WebhookDelivery

    def __init__(self, session: AsyncSession):
        super().__init__(session)
        self.postgres = is_postgres(session)

    async def claim(self, now: datetime, limit: int, lease_until: datetime, token: str) -> list[DeliveryJob]:
        """Take up to `limit` due deliveries: their due time becomes the lease's end, so if this worker dies
        they are due again when it expires. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent claims never
        overlap; SQLite serialises writers, so the single UPDATE is already atomic."""
        # Core, not the ORM's bulk UPDATE: this runs several times a second per worker whether or not anything
        # is due, and the ORM's per-statement work was the largest share of an idle worker's CPU.
        deliveries = D.__table__.c
        due = (
            select(deliveries.id)
            .where(deliveries.status == "pending", deliveries.next_attempt_at <= now)
            .order_by(deliveries.next_attempt_at)
            .limit(limit)
        )
        if self.postgres:
            cte = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
            stmt = update(D.__table__).where(deliveries.id == cte.c.id)
        else:
            stmt = update(D.__table__).where(deliveries.id.in_(due.scalar_subquery()))
        stmt = stmt.values(next_attempt_at=lease_until, claimed_by=token).returning(deliveries.id)
        ids = list((await self.session.execute(stmt)).scalars())
        if not ids:
            return []
        rows = await self.session.execute(
            select(
                D.id,
                D.attempts,
                D.webhook_id,
                W.url,
                W.secret_encrypted,
                W.status,
                E.id,
                E.type,
                E.created_at,
                E.livemode,
                E.data,
                W.failing_since,
            )
            .join(E, E.id == D.event_id)
            .join(W, W.id == D.webhook_id)
            .where(among(D.id, ids))
            .order_by(D.id)
        )
        return [DeliveryJob(*row) for row in rows.all()]

    async def record(self, results: list[dict[str, Any]]) -> int:
        """Write attempt outcomes, each only if its claim still holds the row (a lease that expired and was
        taken over by another worker is that worker's to record). `claimed_by` stays: who attempted last."""
        if not results:
            return 0
        table = D.__table__
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.claimed_by == bindparam("b_token"))
            .values(
                status=bindparam("b_status"),
                attempts=table.c.attempts + bindparam("b_inc"),
                next_attempt_at=bindparam("b_next"),
                last_attempt_at=bindparam("b_at"),
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                last_response=bindparam("b_response"),
                last_duration_ms=bindparam("b_ms"),
                updated_at=bindparam("b_now"),
            )
        )
        result = await self.session.execute(stmt, results)
        return rowcount(result) or 0

    async def release(self, rows: list[dict[str, Any]]) -> None:
        """Claims that were not attempted: due again at `b_next` (status `b_status`), the attempt count and
        the last attempt's details unchanged; `b_error`, when given, says why."""
        if rows:
            table = D.__table__
            await self.session.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"), table.c.claimed_by == bindparam("b_token"))
                .values(
                    status=bindparam("b_status"),
                    next_attempt_at=bindparam("b_next"),
                    last_error=func.coalesce(bindparam("b_error", type_=String), table.c.last_error),
                    updated_at=bindparam("b_now"),
                ),
                rows,
            )

    async def endpoints_recovered(self, webhook_ids: list[str]) -> None:
        """Endpoints that were failing and just succeeded: their failing clock stops."""
        if webhook_ids:
            await self.session.execute(
                update(W)
                .where(among(W.id, webhook_ids), W.failing_since.is_not(None))
                .values(failing_since=None)
                .execution_options(synchronize_session=False)
            )

    async def endpoints_failing(self, webhook_ids: list[str], since: datetime) -> None:
        """Endpoints that were fine and just failed: their failing clock starts."""
        if webhook_ids:
            await self.session.execute(
                update(W)
                .where(among(W.id, webhook_ids), W.failing_since.is_(None))
                .values(failing_since=since)
                .execution_options(synchronize_session=False)
            )

    async def disable(
        self, webhook_ids: list[str], reason: str, now: datetime, failing_before: datetime | None = None
    ) -> list[str]:
        """Disable enabled endpoints (only those failing since before `failing_before`, when given)."""
        if not webhook_ids:
            return []
        stmt = update(W).where(among(W.id, webhook_ids), W.status == "enabled")
        if failing_before is not None:
            stmt = stmt.where(W.failing_since <= failing_before)
        result = await self.session.execute(
            stmt.values(status="disabled", disabled_at=now, disabled_reason=reason[:300])
            .returning(W.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars())

    async def fail_pending(self, webhook_ids: list[str], reason: str, now: datetime) -> None:
        """Deliveries still owed to endpoints that were just disabled: they will not be attempted. A claim in
        flight keeps its token, so its holder still records what actually happened."""
        if webhook_ids:
            await self.session.execute(
                update(D)
                .where(among(D.webhook_id, webhook_ids), D.status == "pending")
                .values(status="failed", next_attempt_at=None, last_error=reason[:300], updated_at=now)
                .execution_options(synchronize_session=False)
            )


class DeliveryLogPurge(Repository[WebhookDelivery]):
    """Retention: final deliveries older than the cutoff, then deleted endpoints with nothing left."""

    model = WebhookDelivery

    async def purge(self, before_id: str, before: datetime, limit: int) -> int:
        # Ids are ULIDs, so "created before the cutoff" is a primary-key range; pending rows are never purged.
        doomed = select(D.id).where(D.id < before_id, D.status != "pending").limit(limit)
        result = await self.session.execute(delete(D).where(D.id.in_(doomed.scalar_subquery())))
        removed = rowcount(result) or 0
        if removed < limit:
            owed = select(D.id).where(D.webhook_id == W.id).exists()
            await self.session.execute(delete(W).where(W.status == "deleted", W.updated_at < before, ~owed))
        return removed
