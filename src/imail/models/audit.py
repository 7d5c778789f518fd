"""The audit log: every change made through the API (a 2xx POST, PUT, PATCH or DELETE) or the CLI, per
workspace and ledger. Who, what, when and from where; never a request body (secrets travel in bodies)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin


class AuditActor(StrEnum):
    api_key = "api_key"  # a change through the API, with a key
    cli = "cli"  # a change with the `imail` command line


class AuditLog(IdMixin, TenantMixin, Base):
    __tablename__ = "audit_logs"
    id_prefix = "aud"
    __tenant_table_args__ = (
        # Retention prunes by age across every workspace.
        Index(None, "occurred_at"),
        Index(None, "workspace_id", "livemode", "object_id"),
    )

    occurred_at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(16))  # AuditActor
    # No foreign key: an entry outlives what it names (keys are revoked, objects deleted).
    api_key_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    api_key_name: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))  # POST, PUT, PATCH, DELETE; CLI for the command line
    route: Mapped[str] = mapped_column(String(300))  # the route template (/v1/leads/{lead_id}) or the command
    object_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # the object changed or created
    path_ids: Mapped[dict[str, Any]] = mapped_column()  # every id in the path, by parameter name
    status_code: Mapped[int | None] = mapped_column(Integer)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
