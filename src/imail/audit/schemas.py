from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from imail.kit.schemas import ResponseModel
from imail.models.audit import AuditActor


class AuditLogEntry(ResponseModel):
    id: str
    object: Literal["audit_log"] = "audit_log"
    occurred_at: datetime
    actor: AuditActor = Field(description="`api_key` (a change through the API) or `cli` (the command line).")
    api_key_id: str | None = Field(description="The key that made the change (api_key actor).")
    api_key_name: str | None = Field(description="Its name when the change was made.")
    method: str = Field(description="POST, PUT, PATCH or DELETE; `CLI` for the command line.")
    route: str = Field(
        description="The route template (`/v1/leads/{lead_id}`) or the CLI command (`keys revoke`)."
    )
    object_id: str | None = Field(description="The object changed or created.")
    path_ids: dict[str, str] = Field(description="Every id in the request path, by parameter name.")
    status_code: int | None = Field(description="The response's status (API changes).")
    ip_address: str | None = Field(description="The client's address (API changes).")
    request_id: str | None
    livemode: bool
