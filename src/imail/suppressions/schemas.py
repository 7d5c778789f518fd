from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from imail.kit.schemas import RequestModel, ResponseModel
from imail.models.suppression import SuppressionReason, SuppressionType


class SuppressionCreate(RequestModel):
    """Exactly one of `email` (one address) or `domain` (every address at that domain)."""

    email: str | None = Field(None, max_length=320, description="An address, like ana@example.com.")
    domain: str | None = Field(None, max_length=253, description="A domain, like example.com (exact match).")


class Suppression(ResponseModel):
    id: str
    object: Literal["suppression"] = "suppression"
    type: SuppressionType
    value: str = Field(description="The lower-cased address or domain.")
    reason: SuppressionReason = Field(
        description="`manual` (this API), `lead_deleted`, `unsubscribed`, `bounced` or `complained`."
    )
    livemode: bool
    created_at: datetime
