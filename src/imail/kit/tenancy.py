"""Whose data a piece of code may touch: one workspace, one ledger (live or test)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Tenant:
    workspace_id: str
    livemode: bool


def tenant_of(row: Any) -> Tenant:
    """The tenant a stored row (anything with `workspace_id` and `livemode`) belongs to."""
    return Tenant(row.workspace_id, row.livemode)
