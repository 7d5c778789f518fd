"""The deliveries imail sends, described in the OpenAPI 3.1 document's `webhooks` section: one entry per event
type, with its body (the contract's envelope around the type's payload schema) and the signature headers."""

# No `from __future__ import annotations`: each generated handler's annotations must be evaluated as it is
# defined, capturing that event type's body model.
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header
from pydantic import BaseModel, ConfigDict, Field, create_model

from imail.events.types import EVENT_TYPES
from imail.kit import versions

HEADERS_DOC = (
    "Verify `X-Imail-Signature` (hex HMAC-SHA256 of the raw body, keyed with the endpoint's `whsec_…` "
    "secret) or the Standard Webhooks headers before trusting the body. Answer 2xx within 10 s; anything "
    "else is retried (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then a last attempt 24 h after the event; "
    "±10% jitter; `Retry-After` honoured). 410 disables the endpoint."
)


def _envelope(event_type: str, payload: type[BaseModel]) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in event_type.replace("_", ".").split(".")) + "Event"
    fields: dict[str, Any] = {
        "id": (str, Field(description="The event's id (`evt_…`); the same on every attempt.")),
        "type": (Literal[event_type], ...),
        "created_at": (datetime, ...),
        "livemode": (bool, Field(description="false for events of the test ledger.")),
        "data": (payload, ...),
    }
    return create_model(name, __config__=ConfigDict(title=name), **fields)


def _since(event_type: str) -> str:
    added = versions.event_introduced(event_type)
    if added is None or added == versions.FIRST:
        return ""
    return (
        f" Added in API version {added.isoformat()}: endpoints created under an earlier `Imail-Version` "
        "never receive it."
    )


def document_webhooks(app: FastAPI) -> None:
    """Add one `webhooks` entry per event type (documentation only: imail sends these, doesn't serve them)."""
    for event_type, payload in EVENT_TYPES.items():
        body_model = _envelope(event_type, payload)

        async def delivery(
            body: body_model,  # type: ignore[valid-type]
            x_imail_signature: Annotated[str, Header(description="Hex HMAC-SHA256 of the raw body.")],
            x_imail_event_id: Annotated[str, Header(description="The event's `evt_…` id.")],
            x_imail_event_type: Annotated[str, Header(description="The event type.")],
            webhook_id: Annotated[str, Header(alias="webhook-id", description="Standard Webhooks: the id.")],
            webhook_timestamp: Annotated[
                str, Header(alias="webhook-timestamp", description="Standard Webhooks: Unix seconds.")
            ],
            webhook_signature: Annotated[
                str,
                Header(
                    alias="webhook-signature",
                    description="Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, "
                    "keyed with the base64-decoded part of the secret after `whsec_`.",
                ),
            ],
        ) -> None:
            """Documentation only."""

        app.webhooks.add_api_route(
            event_type,
            delivery,
            methods=["POST"],
            name="webhook_" + event_type.replace(".", "_"),
            summary=event_type,
            description=HEADERS_DOC + _since(event_type),
            status_code=200,
            tags=["Webhooks"],
            generate_unique_id_function=lambda route: route.name,
        )
