"""An inbox the submission server throttles (a 421, or a 4.7.x "slow down" that is not greylisting) stops
sending for a while: the wait starts at a minute and doubles with each throttle that follows soon after the
previous wait ended, up to an hour. The sending rotation skips the inbox until then; its emails wait, they are
not failed. The inbox shows the reason and the next attempt (`sending_backoff`).

An OAuth inbox whose token endpoint fails (a 5xx or 429, no answer) backs off the same way, with the cause
`oauth`: then nothing asks that endpoint for the inbox's token before the wait is over (sending, warmup, the
IMAP reader and the login check all wait; imail.inboxes.connection.endpoints_for)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from imail.inboxes.repository import InboxRepository
from imail.kit.tenancy import Tenant
from imail.models import Inbox
from imail.models.inbox import BackoffCause

FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=1)
# A throttle within this time after the previous wait ended counts as the same episode: the wait doubles.
MEMORY = timedelta(hours=1)
MAX_REASON_CHARS = 500


def next_backoff(inbox: Inbox, now: datetime) -> tuple[int, datetime]:
    """(throttles in a row, until when) after one more throttle at `now`. A throttle while a wait is still
    running (an email of the same batch, already on its way) changes nothing: one episode, one doubling."""
    until = inbox.send_backoff_until
    if until is not None and until > now:
        return inbox.send_backoffs, until
    in_a_row = inbox.send_backoffs + 1 if until is not None and now - until < MEMORY else 1
    return in_a_row, now + min(FIRST_WAIT * 2 ** (in_a_row - 1), LONGEST_WAIT)


async def report_throttled(
    session: AsyncSession,
    tenant: Tenant,
    inbox_id: str,
    reason: str,
    now: datetime,
    cause: BackoffCause = BackoffCause.smtp,
) -> datetime | None:
    """For sending (in its transaction): the server throttled this inbox (or, `cause` oauth, its token
    endpoint failed). Returns when it may send again (None: the inbox is gone)."""
    inbox = await InboxRepository(session, tenant).get(inbox_id)
    if inbox is None:
        return None
    in_a_row, until = next_backoff(inbox, now)
    if until != inbox.send_backoff_until or cause == BackoffCause.oauth:
        # A token endpoint failing during a wait its SMTP server asked for: logins wait for it too.
        inbox.send_backoff_cause = cause.value
    inbox.send_backoffs = in_a_row
    inbox.send_backoff_until = until
    inbox.send_backoff_reason = " ".join(reason.split())[:MAX_REASON_CHARS] or "throttled by the server"
    return until


def forget_token_backoff(inbox: Inbox) -> None:
    """A new consent just got a token from the endpoint (the caller flushes): its wait is over."""
    if inbox.send_backoff_cause == BackoffCause.oauth.value:
        inbox.send_backoff_until = None
        inbox.send_backoff_reason = None
        inbox.send_backoffs = 0
        inbox.send_backoff_cause = None
