from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema
from typing_extensions import TypeAliasType

from imail.events.types import EVENT_TYPES
from imail.kit.schemas import RequestModel, ResponseModel

EVENT_CHOICES = ["*", *EVENT_TYPES]
# A named alias is one schema component, so generated clients get one well-named enum.
WebhookStatus = TypeAliasType("WebhookStatus", Literal["enabled", "disabled"])
DeliveryStatus = TypeAliasType("DeliveryStatus", Literal["pending", "succeeded", "failed"])
# Documented as the enum, read as text: whether a type may be subscribed depends on the API version (service).
WebhookEventType = TypeAliasType(
    "WebhookEventType", Annotated[str, WithJsonSchema({"type": "string", "enum": EVENT_CHOICES})]
)


class Webhook(ResponseModel):
    """An endpoint that receives signed event deliveries."""

    id: str
    object: Literal["webhook"] = "webhook"
    url: str
    description: str
    events: list[str] = Field(description='Event types delivered to this endpoint; `["*"]`: all of them.')
    status: WebhookStatus
    disabled_reason: str | None = Field(
        description="Why the endpoint was disabled (410 Gone, or every attempt failing for 24 h); "
        "null when enabled."
    )
    disabled_at: datetime | None
    api_version: date = Field(
        description="The Imail-Version snapshot the endpoint was created under; event types added "
        "after it are never delivered to it."
    )
    livemode: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(Webhook):
    secret: str = Field(
        description="The signing secret (`whsec_…`). Shown only in this response: store it now."
    )


class WebhookCreate(RequestModel):
    url: str = Field(
        max_length=2048,
        description="https:// or http:// URL on a public host; no credentials in it.",
        examples=["https://example.com/hooks/imail"],
    )
    events: list[WebhookEventType] = Field(
        min_length=1,
        max_length=len(EVENT_CHOICES),
        description='Event types to receive, or `["*"]` for every type available to the API version.',
        examples=[["email.sent", "reply.received"]],
    )
    description: str = Field("", max_length=500)


class WebhookDeleted(BaseModel):
    id: str
    object: Literal["webhook"] = "webhook"
    deleted: Literal[True] = True


class WebhookDelivery(ResponseModel):
    """One event owed to one endpoint, and how its attempts went."""

    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    webhook_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far.")
    last_attempt_at: datetime | None
    last_status_code: int | None = Field(
        description="HTTP status of the last answer; null if there was none."
    )
    last_error: str | None = Field(
        description="Why the last attempt failed (status, timeout, refused connection)."
    )
    last_response: str | None = Field(description="The start of the last failed answer's body.")
    last_duration_ms: int | None
    next_attempt_at: datetime | None = Field(description="When the next attempt is due; null once final.")
    livemode: bool
    created_at: datetime
