"""Pausing an inbox's campaign sending, and resuming it.

Three things pause it: bounce protection (its hard-bounce rate over its latest campaign sends passed the
threshold, imail.sending.protection), its provider refusing a send on policy (an SMTP 5.7.x answer: the
provider is blocking us) and its owner (`POST /v1/inboxes/{id}/sending/pause`). While paused, the sending
engine gives it no campaign email (follow-ups of its threads wait; other inboxes of a campaign carry on), and
`inbox.sending_paused` has fired once. The inbox stays connected: replies and bounces are still read, and
warmup goes on (warmup's own auto-pause judges its own sends), since a pause is about the cold campaign mail
its provider objects to.

`POST …/sending/resume` resumes it and starts bounce protection's window again: only emails claimed after the
resume count, so the bounces that caused the pause cannot pause it again at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from imail.events.service import record_event
from imail.inboxes.repository import InboxRepository
from imail.kit.tenancy import Tenant
from imail.models import Inbox

REASONS = ("bounce_rate", "smtp_policy", "manual")


async def pause_sending(
    session: AsyncSession,
    tenant: Tenant,
    inbox_id: str,
    reason: str,
    now: datetime,
    detail: str | None = None,
    bounce_rate: float | None = None,
    sends_considered: int | None = None,
) -> bool:
    """Pause unless already paused; True (and `inbox.sending_paused` recorded) if this call paused it."""
    assert reason in REASONS, reason
    detail = detail[:1000] if detail else None
    email = await InboxRepository(session, tenant).pause_sending_if_running(inbox_id, now, reason, detail)
    if email is None:
        return False
    await record_event(
        session,
        tenant,
        "inbox.sending_paused",
        {
            "inbox_id": inbox_id,
            "email": email,
            "reason": reason,
            "detail": detail,
            "bounce_rate": round(bounce_rate, 4) if bounce_rate is not None else None,
            "sends_considered": sends_considered,
        },
    )
    return True


async def resume_sending(session: AsyncSession, tenant: Tenant, inbox: Inbox, now: datetime) -> None:
    """Resume a paused inbox (a running one is left as it is) and restart bounce protection's window."""
    if inbox.sending_paused_at is not None:
        await InboxRepository(session, tenant).resume_sending(inbox.id, now)
