"""Repository bases. Tenant tables are only ever read through `TenantRepository.select()`, which pins the
workspace and the ledger, so no query can forget whose data it reads; a statement select() cannot build (an
UPDATE, another tenant table, a statement built once) takes the same pin from `tenant_pin`, the one place the
tenant filter is written.

Every query lives in a domain's repository. The ORM is the default. Where a path is hot enough that the ORM's
per-row or per-statement work shows, the repository uses Core (statements built once, `kit.sql` helpers for
many rows in one statement) or the driver itself (`kit.sql.DriverStatement`, COPY) behind a method whose name
and docstring say so; callers never see which."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from imail.models.base import Base

M = TypeVar("M", bound=Base)


def tenant_pin(rows: Any, tenant: Tenant | None = None) -> ColumnElement[bool]:
    """The tenant filter: `rows` (a model, or a table's columns) of the tenant's workspace and ledger. Without
    a tenant, of the bind parameters `tenant_workspace_id` and `tenant_livemode`, for a statement built once
    and given them (`tenant_params`) at execution."""
    if tenant is None:
        return and_(
            rows.workspace_id == bindparam("tenant_workspace_id"),
            rows.livemode == bindparam("tenant_livemode"),
        )
    return and_(rows.workspace_id == tenant.workspace_id, rows.livemode == tenant.livemode)


def tenant_params(tenant: Tenant) -> dict[str, Any]:
    """The values of `tenant_pin(rows)`'s bind parameters."""
    return {"tenant_workspace_id": tenant.workspace_id, "tenant_livemode": tenant.livemode}


class Repository(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def delete(self, obj: M) -> None:
        """Delete a loaded row (its ORM cascades included), at the next flush."""
        await self.session.delete(obj)

    async def batch_after(self, after_id: str | None, limit: int) -> list[M]:
        """Every row of the table (all tenants: operators' maintenance only) in id order, `limit` at a
        time."""
        model: Any = self.model
        stmt = select(model).order_by(model.id).limit(limit)
        if after_id is not None:
            stmt = stmt.where(model.id > after_id)
        return list((await self.session.execute(stmt)).scalars())


class TenantRepository(Repository[M]):
    def __init__(self, session: AsyncSession, tenant: Tenant):
        super().__init__(session)
        self.tenant = tenant

    def select(self, *entities: Any) -> Select[Any]:
        model: Any = self.model
        stmt = select(*entities) if entities else select(model)
        return stmt.where(tenant_pin(model, self.tenant))

    def pin(self, rows: Any) -> ColumnElement[bool]:
        """This tenant's filter on `rows`: for an UPDATE or DELETE, or another tenant table than the
        model's."""
        return tenant_pin(rows, self.tenant)

    def new(self, **fields: Any) -> M:
        """An instance stamped with this tenant, not yet added."""
        return self.model(workspace_id=self.tenant.workspace_id, livemode=self.tenant.livemode, **fields)

    async def get(self, object_id: str) -> M | None:
        model: Any = self.model
        found: M | None = (
            await self.session.execute(self.select().where(model.id == object_id))
        ).scalar_one_or_none()
        return found

    async def page(self, params: PageParams, stmt: Select[Any] | None = None) -> list[M]:
        """`limit + 1` rows, newest first, strictly after the cursor's id (see kit.pagination)."""
        model: Any = self.model
        if stmt is None and self._plain_select:
            prebuilt = _keyset_page(model, (), params.after_id is not None)
            return list((await self.session.execute(prebuilt, self._page_values(params))).scalars())
        stmt = self.select() if stmt is None else stmt
        if params.after_id is not None:
            stmt = stmt.where(model.id < params.after_id)
        stmt = stmt.order_by(model.id.desc()).limit(params.limit + 1)
        return list((await self.session.execute(stmt)).scalars())

    async def page_columns(self, params: PageParams, columns: Sequence[str]) -> list[dict[str, Any]]:
        """As `page`, but only the named columns, as dicts: for a list whose schema reads plain columns. The
        statement is plain Core (no ORM entity, so no ORM compile and loading step) and a dict is what
        pydantic validates fastest; reading a schema field the row lacks (a constant `object`) off a Row
        raises inside SQLAlchemy, which costs more than the whole dict."""
        if not self._plain_select:
            raise TypeError(f"{type(self).__name__} narrows select(); page_columns would not")
        stmt = _keyset_page(self.model, tuple(columns), params.after_id is not None)
        result = await self.session.execute(stmt, self._page_values(params))
        names = tuple(result.keys())
        return [dict(zip(names, row)) for row in result]  # a seventh of Row._asdict()'s cost

    @property
    def _plain_select(self) -> bool:
        """Whether `select()` is the base tenant pin; a repository that narrows it (hiding deleted rows, say)
        pages through its own `select()` instead of the prebuilt statement."""
        return type(self).select is TenantRepository.select

    def _page_values(self, params: PageParams) -> dict[str, Any]:
        return {**tenant_params(self.tenant), "after_id": params.after_id, "page_size": params.limit + 1}


@cache
def _keyset_page(model: Any, columns: tuple[str, ...], after: bool) -> Select[Any]:
    """The plain keyset page of a tenant table, built once with bind parameters: a statement reused as-is
    skips SQLAlchemy's per-call construction and cache-key work. The same tenant pin as
    TenantRepository.select."""
    # With columns, every clause names the table's Core columns: one ORM attribute anywhere would route the
    # statement through the ORM's compile and loading steps.
    table = model.__table__.c if columns else model
    stmt = select(*(table[name] for name in columns)) if columns else select(model)
    stmt = stmt.where(tenant_pin(table))
    if after:
        stmt = stmt.where(table.id < bindparam("after_id"))
    return stmt.order_by(table.id.desc()).limit(bindparam("page_size", type_=Integer))
