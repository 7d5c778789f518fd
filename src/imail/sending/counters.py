"""The daily send counters per inbox (and campaign), shared by campaign sending and warmup: an inbox's daily
limit counts both. Warmup (imail.warmup.service) takes and gives back its sends through these functions, not
through imail.sending.repository, which only imail.sending imports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.sql import HotPathRow
from imail.sending.repository import SendQueue


async def lock_counters(session: AsyncSession, scope_ids: Iterable[str], day: date) -> dict[str, HotPathRow]:
    """Today's counters for these campaigns and inboxes, created if missing and row-locked; plain rows whose
    changed counts `save_counters` writes."""
    return await SendQueue(session).lock_counters(scope_ids, day)


async def save_counters(session: AsyncSession, day: date, counters: Iterable[HotPathRow]) -> None:
    await SendQueue(session).save_counters(day, counters)


async def adjust_counters(session: AsyncSession, day: date, scope_ids: Iterable[str], delta: int) -> None:
    await SendQueue(session).adjust_counters(day, scope_ids, delta)
