from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from imail.auth import scopes as scope_rules
from imail.kit.schemas import RequestModel, ResponseModel


class ApiKey(ResponseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    redacted: str = Field(
        description="The key's first and last characters; the key itself is shown once, on create."
    )
    livemode: bool
    scopes: list[str] | None = Field(description="`null`: every scope.")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    secret: str = Field(description="The key itself. Shown only in this response; store it now.")


class ApiKeyCreate(RequestModel):
    name: str = Field("", max_length=120)
    scopes: list[str] | None = Field(
        None,
        description="Scopes such as `analytics:read` or `campaigns:write`; omit for every scope the caller "
        "has.",
    )

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else scope_rules.validate(value)
