from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Health = Literal["ok", "degraded", "down", "disabled"]


class Healthz(BaseModel):
    status: Literal["ok"] = "ok"


class Component(BaseModel):
    status: Health
    detail: str | None = None
    latency_ms: float | None = None


class StatusFull(BaseModel):
    status: Health
    checked_at: datetime
    version: str
    components: dict[str, Component]
