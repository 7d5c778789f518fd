from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_

from imail.kit.clock import utcnow
from imail.kit.ids import new_id
from imail.kit.pagination import PageParams
from imail.kit.repository import TenantRepository
from imail.kit.sql import among, upsert_insert
from imail.models import Suppression
from imail.models.suppression import SuppressionType

EXPORT_COLUMNS = ("id", "type", "value", "reason", "livemode", "created_at")


class SuppressionRepository(TenantRepository[Suppression]):
    model = Suppression

    def _filtered(self, stmt: Any, type_: str | None, value: str | None, reason: str | None) -> Any:
        if type_ is not None:
            stmt = stmt.where(Suppression.type == type_)
        if value is not None:
            stmt = stmt.where(Suppression.value == value)
        if reason is not None:
            stmt = stmt.where(Suppression.reason == reason)
        return stmt

    async def list_page(
        self, params: PageParams, type_: str | None, value: str | None, reason: str | None
    ) -> list[Suppression]:
        return await self.page(params, self._filtered(self.select(), type_, value, reason))

    async def export_batch(
        self, type_: str | None, value: str | None, reason: str | None, after_id: str | None, limit: int
    ) -> list[Any]:
        """A keyset page of matching entries, oldest first, as plain rows of EXPORT_COLUMNS."""
        table = Suppression.__table__.c
        stmt = self._filtered(self.select(*(table[name] for name in EXPORT_COLUMNS)), type_, value, reason)
        if after_id is not None:
            stmt = stmt.where(Suppression.id > after_id)
        return list((await self.session.execute(stmt.order_by(Suppression.id).limit(limit))).all())

    async def ensure(self, type_: str, value: str, reason: str) -> Suppression:
        """The entry for (type, value), added unless one exists; safe against concurrent callers."""
        await self.add_missing([(type_, value, reason)])
        entry = await self.find(type_, value)
        assert entry is not None
        return entry

    async def add_missing(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """(type, value, reason) entries, each added unless one exists for its (type, value): one statement,
        safe against concurrent callers."""
        if not entries:
            return
        insert = upsert_insert(self.session)
        now = utcnow()
        await self.session.execute(
            insert(Suppression.__table__).on_conflict_do_nothing(
                index_elements=["workspace_id", "livemode", "type", "value"]
            ),
            [
                {
                    "id": new_id("sup"),
                    "workspace_id": self.tenant.workspace_id,
                    "livemode": self.tenant.livemode,
                    "type": type_,
                    "value": value,
                    "reason": reason,
                    "created_at": now,
                }
                for type_, value, reason in entries
            ],
        )

    async def find(self, type_: str, value: str) -> Suppression | None:
        stmt = self.select().where(Suppression.type == type_, Suppression.value == value)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def matching(self, emails: Sequence[str], domains: Sequence[str]) -> list[tuple[str, str, str]]:
        """(id, type, value) of every entry naming one of these addresses or domains: one query."""
        if not emails and not domains:
            return []
        emails, domains = sorted(set(emails)), sorted(set(domains))
        in_emails, in_domains = among(Suppression.value, emails), among(Suppression.value, domains)
        stmt = self.select(Suppression.id, Suppression.type, Suppression.value).where(
            or_(
                and_(Suppression.type == SuppressionType.email.value, in_emails),
                and_(Suppression.type == SuppressionType.domain.value, in_domains),
            )
        )
        return [(row[0], row[1], row[2]) for row in (await self.session.execute(stmt)).all()]
