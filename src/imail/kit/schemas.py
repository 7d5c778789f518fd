"""The two bases every API schema derives from, so request strictness and response shaping are decided
once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body or query model: an unknown field is a 422 naming it, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """A response body, built from plain data (a dict, a dataclass or a row's attributes) by the service."""

    model_config = ConfigDict(from_attributes=True)
