"""Declarative base, constraint naming convention and the id/timestamp/tenant mixins every table uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, MetaData, String, Table, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from imail.kit.clock import utcnow
from imail.kit.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on both backends (SQLite would otherwise hand back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")

ID_LENGTH = 40


class Base(DeclarativeBase):
    # Every model is mapped to one Table (DeclarativeBase types it as any FromClause, which has no insert()).
    __table__: ClassVar[Table]

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[str]: JSONType}


class IdMixin:
    """A prefixed ULID primary key; subclasses set `id_prefix`."""

    id_prefix: str

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("id", new_id(self.id_prefix))
        super().__init__(**kwargs)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantMixin:
    """Rows owned by one workspace in one ledger (live or test); repositories filter on both, always.

    Every tenant table gets an index on (workspace_id, livemode, id): the tenant filter plus keyset paging.
    Models add their own constraints through `__tenant_table_args__`.
    """

    __tenant_table_args__: tuple = ()
    __tenant_key__: str = "id"  # the column keyset pages walk; a table keyed otherwise names its own

    @declared_attr
    def workspace_id(cls) -> Mapped[str]:
        return mapped_column(String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"))

    livemode: Mapped[bool] = mapped_column(Boolean)

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        return (Index(None, "workspace_id", "livemode", cls.__tenant_key__), *cls.__tenant_table_args__)
