"""Repository bases. Tenant tables are only ever read through `TenantRepository.select()`, which pins the
workspace and the ledger, so no query can forget whose data it reads."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from imail.models.base import Base

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj


class TenantRepository(Repository[M]):
    def __init__(self, session: AsyncSession, tenant: Tenant):
        super().__init__(session)
        self.tenant = tenant

    def select(self, *entities: Any) -> Select:
        model: Any = self.model
        stmt = select(*entities) if entities else select(model)
        return stmt.where(model.workspace_id == self.tenant.workspace_id, model.livemode == self.tenant.livemode)

    def new(self, **fields: Any) -> M:
        """An instance stamped with this tenant, not yet added."""
        return self.model(workspace_id=self.tenant.workspace_id, livemode=self.tenant.livemode, **fields)

    async def get(self, object_id: str) -> M | None:
        model: Any = self.model
        return (await self.session.execute(self.select().where(model.id == object_id))).scalar_one_or_none()

    async def page(self, params: PageParams, stmt: Select | None = None) -> list[M]:
        """`limit + 1` rows, newest first, strictly after the cursor's id (see kit.pagination)."""
        model: Any = self.model
        stmt = self.select() if stmt is None else stmt
        if params.after_id is not None:
            stmt = stmt.where(model.id < params.after_id)
        stmt = stmt.order_by(model.id.desc()).limit(params.limit + 1)
        return list((await self.session.execute(stmt)).scalars())
