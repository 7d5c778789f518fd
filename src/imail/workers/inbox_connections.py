"""The inbox connection monitor worker: logs in to the live inboxes due a check (imail.inboxes.monitor)."""

from __future__ import annotations

from imail.inboxes.monitor import check_due_inboxes
from imail.kit.clock import utcnow
from imail.workers.context import WorkerContext


async def monitor_inbox_connections(ctx: WorkerContext) -> int:
    """The worker (see workers/registry.py)."""
    return await check_due_inboxes(ctx, utcnow())
