"""Whose data a piece of code may touch: one workspace, one ledger (live or test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tenant:
    workspace_id: str
    livemode: bool
