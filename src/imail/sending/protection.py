"""Bounce protection: an inbox whose hard bounces pass `bounce_protection_rate` of its latest
`bounce_protection_window` campaign sends (once it has at least `bounce_protection_min_sends` of them since
its last resume) stops sending campaigns (imail.inboxes.pausing), before its provider's reputation systems
stop it for good. Judged whenever a hard bounce is recorded: refused at SMTP time, or a delivery report read
back."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.inboxes import pausing
from imail.kit.tenancy import Tenant, tenant_of
from imail.sending.repository import InboxSends, SendQueue

log = structlog.get_logger("imail.sending")


async def judge_inboxes(
    session: AsyncSession, settings: Settings, inbox_ids: Iterable[str], now: datetime
) -> None:
    """Pause any of these inboxes (still sending) whose latest campaign sends bounce too often."""
    inboxes = await SendQueue(session).inboxes(i for i in inbox_ids if i)
    sends = InboxSends(session)
    for inbox_id in sorted(inboxes):
        inbox = inboxes[inbox_id]
        if inbox.sending_paused_at is not None:
            continue
        total, bounced = await sends.latest(
            inbox.id, inbox.sending_resumed_at, settings.bounce_protection_window
        )
        if total < settings.bounce_protection_min_sends or bounced <= settings.bounce_protection_rate * total:
            continue
        rate = bounced / total
        detail = (
            f"{bounced} of the last {total} campaign emails hard-bounced ({rate:.1%}, above "
            f"{settings.bounce_protection_rate:.1%})"
        )
        if await pausing.pause_sending(
            session,
            tenant_of(inbox),
            inbox.id,
            "bounce_rate",
            now,
            detail,
            bounce_rate=rate,
            sends_considered=total,
        ):
            log.warning("inbox sending paused", inbox_id=inbox.id, reason="bounce_rate", detail=detail)


async def policy_rejected(
    session: AsyncSession, tenant: Tenant, message_inbox_id: str | None, detail: str, now: datetime
) -> None:
    """The inbox's SMTP server refused a send on policy (5.7.x): its provider is blocking it, so it pauses."""
    if message_inbox_id is None:
        return
    if await pausing.pause_sending(session, tenant, message_inbox_id, "smtp_policy", now, detail):
        log.warning("inbox sending paused", inbox_id=message_inbox_id, reason="smtp_policy", detail=detail)
