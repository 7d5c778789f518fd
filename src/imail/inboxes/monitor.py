"""Connection state: login checks on a schedule, status transitions with their events, and the hooks other
code calls when a send or an IMAP read fails.

Transitions are conditional UPDATEs (`connected → disconnected`, `disconnected → connected`): however many
checks run at once, only the one that changes the row records `inbox.disconnected` / `inbox.reconnected`, so
there is one event per transition, not one per check.

Reads that keep failing (`report_read_failure`) disconnect the inbox the same way once
`inbound_read_failure_limit` fail in a row. The scheduled login check does not connect such an inbox again:
its login may work while its reads do not (a server refusing to open the mailbox, an error in imail itself).
Asking to reconnect (the API's reconnect, new server settings, a new OAuth consent) forgets the failures and
lets the reader try again.

An OAuth inbox whose token cannot be had is judged at once by whichever caller met it
(`report_token_failure`): a dead refresh token or a refused token request disconnects it (the same conditional
transition, so one event), a failing token endpoint makes it back off (imail.inboxes.backoff).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.db import Database
from imail.events.service import record_event
from imail.inboxes import backoff, connection, oauth
from imail.inboxes.repository import InboxMaintenance, InboxRepository
from imail.kit.tenancy import Tenant, tenant_of
from imail.mail.endpoint import MailConnectionError
from imail.models import Inbox
from imail.models.inbox import BackoffCause, InboxStatus

log = structlog.get_logger("imail.inboxes.monitor")


class CheckRuntime(Protocol):
    """What a round of checks uses (a worker's context has it; the worker is
    imail.workers.inbox_connections)."""

    settings: Settings
    database: Database
    http: httpx.AsyncClient


BATCH = 20  # inboxes checked at once by one monitor iteration
MAX_ERROR_CHARS = 1000


@dataclass
class CheckOutcome:
    """What a login check found: nothing wrong (no failures), server failures, or no usable credentials."""

    failures: list[MailConnectionError] = field(default_factory=list)
    unavailable: connection.CredentialsUnavailable | None = None
    rotated_token: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and self.unavailable is None

    @property
    def side(self) -> str:
        if self.unavailable is not None or len(self.failures) > 1:
            return "both"
        return self.failures[0].side if self.failures else "both"

    @property
    def detail(self) -> str:
        if self.unavailable is not None:
            return self.unavailable.detail
        return "; ".join(f.message for f in self.failures)


def login_fingerprint(inbox: Inbox) -> tuple:
    """Everything a login depends on: a check made with other settings must not decide this row's status."""
    return (
        inbox.smtp_host,
        inbox.smtp_port,
        inbox.smtp_security,
        inbox.smtp_username,
        inbox.smtp_password_encrypted,
        inbox.imap_host,
        inbox.imap_port,
        inbox.imap_security,
        inbox.imap_username,
        inbox.imap_password_encrypted,
        inbox.oauth_refresh_token_encrypted,
    )


async def probe(
    inbox: Inbox,
    settings: Settings,
    http: httpx.AsyncClient,
    now: datetime | None = None,
    *,
    imap_login: bool = True,
) -> CheckOutcome:
    """Log in to both servers of a stored inbox (to SMTP only without `imap_login`), for real (no database
    work)."""
    try:
        endpoints = await connection.endpoints_for(inbox, settings, http, now)
    except connection.CredentialsUnavailable as exc:
        return CheckOutcome(unavailable=exc)
    failures = await connection.check_endpoints(endpoints, settings, imap_login=imap_login)
    return CheckOutcome(failures=failures, rotated_token=endpoints.rotated_token)


async def mark_failed(
    session: AsyncSession,
    inbox: Inbox,
    side: str,
    detail: str,
    now: datetime,
    *,
    only_if: tuple[ColumnElement[bool], ...] = (),
    **values: Any,
) -> bool:
    """Record a failed check (and any other `values`, where `only_if` holds); `connected → disconnected` (and
    its event) only if this call made the change."""
    repo = InboxRepository(session, tenant_of(inbox))
    detail = detail[:MAX_ERROR_CHARS]
    values |= {"last_error": detail, "last_error_side": side, "last_checked_at": now}
    changed = await repo.set_status_if(
        inbox.id,
        (InboxStatus.connected.value,),
        InboxStatus.disconnected.value,
        only_if=only_if,
        status_changed_at=now,
        **values,
    )
    if changed:
        await record_event(
            session,
            repo.tenant,
            "inbox.disconnected",
            {"inbox_id": inbox.id, "email": inbox.email, "side": side, "detail": detail},
        )
        log.info("inbox disconnected", inbox_id=inbox.id, side=side)
    else:
        await repo.stamp(inbox.id, only_if=only_if, **values)
    return changed


async def report_token_failure(
    session: AsyncSession, inbox: Inbox, failure: connection.CredentialsUnavailable, now: datetime
) -> datetime | None:
    """For every caller of `endpoints_for` (in its transaction), when an OAuth inbox's token could not be had
    (`failure.judged_at_once`); `inbox` is the copy the caller asked with.

    A dead refresh token (invalid_grant) or a refused token request disconnects the inbox at once: one
    `inbox.disconnected`, however many callers (sending, warmup, the reader, the login check, in any number
    of workers) report it. A dead token is dropped too, so that nothing asks the provider again before the
    user consents again (the callback stores a new token and reconnects the inbox); a refused request (the
    provider refusing this server's client: invalid_client…) keeps it, and the login check tries it again
    every interval. Both only if the stored token is still the one that failed: a consent given meanwhile
    stands.

    A failing token endpoint (a 5xx, no answer) makes the inbox back off instead (imail.inboxes.backoff,
    cause oauth), still connected; returns when the next attempt may be."""
    ciphertext = inbox.oauth_refresh_token_encrypted
    if failure.transient:
        if failure.retry_at is not None:
            return failure.retry_at  # asked during the wait: nothing was tried, nothing changes
        return await backoff.report_throttled(
            session, tenant_of(inbox), inbox.id, failure.detail, now, BackoffCause.oauth
        )
    same_token = (
        Inbox.oauth_refresh_token_encrypted == ciphertext
        if ciphertext is not None
        else Inbox.oauth_refresh_token_encrypted.is_(None),
    )
    dropped = {"oauth_refresh_token_encrypted": None} if failure.token_dead else {}
    await mark_failed(session, inbox, "both", failure.detail, now, only_if=same_token, **dropped)
    oauth.ACCESS_TOKENS.forget(inbox.id)
    return None


async def mark_ok(session: AsyncSession, inbox: Inbox, now: datetime) -> bool:
    """Record a good check; `disconnected → connected` (and `inbox.reconnected`) only if this call made the
    change."""
    repo = InboxRepository(session, tenant_of(inbox))
    changed = await repo.set_status_if(
        inbox.id,
        (InboxStatus.disconnected.value,),
        InboxStatus.connected.value,
        last_error=None,
        last_error_side=None,
        last_checked_at=now,
        status_changed_at=now,
    )
    if changed:
        await record_event(
            session, repo.tenant, "inbox.reconnected", {"inbox_id": inbox.id, "email": inbox.email}
        )
        log.info("inbox reconnected", inbox_id=inbox.id)
    else:
        await _stamp(session, inbox, last_error=None, last_error_side=None, last_checked_at=now)
    return changed


async def _stamp(session: AsyncSession, inbox: Inbox, **values: Any) -> None:
    await InboxRepository(session, tenant_of(inbox)).stamp(inbox.id, **values)


async def apply_outcome(
    session: AsyncSession,
    inbox: Inbox,
    outcome: CheckOutcome,
    settings: Settings,
    now: datetime,
    *,
    requested: bool = False,
) -> bool:
    """Write a check's outcome to the stored inbox; False when the row changed meanwhile (then the check is
    moot). `requested`: someone asked to reconnect, so the reader's failures are forgotten and a good login
    reconnects even an inbox that reads disconnected."""
    current = await InboxRepository(session, tenant_of(inbox)).get(inbox.id)
    if current is None or current.status == InboxStatus.setup_pending.value:
        return False
    if login_fingerprint(current) != login_fingerprint(inbox):
        return False
    if outcome.rotated_token:
        current.oauth_refresh_token_encrypted = outcome.rotated_token
    if requested:
        forget_read_failures(current)
    await session.flush()
    if outcome.unavailable is not None and outcome.unavailable.judged_at_once:
        await report_token_failure(session, current, outcome.unavailable, now)
    elif outcome.ok and disconnected_by_reads(current, settings):
        await _stamp(session, current, last_checked_at=now)  # the login works; the reads did not: left as is
    elif outcome.ok:
        await mark_ok(session, current, now)
    else:
        await mark_failed(session, current, outcome.side, outcome.detail, now)
    return True


async def report_connection_failure(
    session: AsyncSession, tenant: Tenant, inbox_id: str, side: str, detail: str
) -> None:
    """For sending and IMAP polling: call this (in your transaction) when SMTP or IMAP fails to connect or log
    in — not for a refused recipient. It records the error and makes the inbox due for a check at once; the
    monitor then logs in again within seconds and, if that fails too, marks it disconnected (one
    `inbox.disconnected`).
    """
    await InboxRepository(session, tenant).stamp(
        inbox_id,
        last_error=detail[:MAX_ERROR_CHARS],
        last_error_side=side if side in ("smtp", "imap") else "both",
        last_checked_at=None,
    )


def disconnected_by_reads(inbox: Inbox, settings: Settings) -> bool:
    return (
        inbox.status == InboxStatus.disconnected.value
        and inbox.read_failures >= settings.inbound_read_failure_limit
    )


def forget_read_failures(inbox: Inbox) -> None:
    """On a request to reconnect (the caller flushes): the reader starts counting again, and a crash of imail
    seen before is logged with its traceback again if it recurs."""
    inbox.read_failures = 0
    inbox.last_read_error = None
    inbox.last_read_error_at = None
    inbox.read_crash_logged = None


async def report_read_failure(
    session: AsyncSession,
    inbox: Inbox,
    reason: str,
    now: datetime,
    *,
    limit: int,
    login: bool = False,
    crash: str | None = None,
) -> int:
    """For the IMAP reader, in its transaction: a read of this inbox failed. Counted on the row (a restart
    does not forget it) with the reason (`last_read_error`, shown by the API); the count in a row is returned.
    At `limit` the inbox is disconnected as by a failed login check (`mark_failed`: one `inbox.disconnected`,
    side imap). Below it, a failed connect or login (`login`) is reported to the monitor, which checks the
    login at once. `crash`: the fingerprint of an imail error whose traceback is being logged."""
    reason = reason[:MAX_ERROR_CHARS]
    failures = await InboxRepository(session, tenant_of(inbox)).count_read_failure(
        inbox.id, reason, now, crash
    )
    if failures >= limit:
        await mark_failed(
            session,
            inbox,
            "imap",
            f"reading mail over IMAP failed {failures} times in a row; the last time: {reason}",
            now,
        )
    elif failures and login:
        await report_connection_failure(session, tenant_of(inbox), inbox.id, "imap", reason)
    return failures


async def report_read_success(session: AsyncSession, inbox: Inbox) -> None:
    """For the IMAP reader: a read of this inbox worked, so the failures in a row and the last read error
    go."""
    await InboxRepository(session, tenant_of(inbox)).clear_read_failures(inbox.id)


def _healthy(inbox: Inbox) -> bool:
    """Connected, with no failure reported since its last good check and no failed read."""
    return (
        inbox.status == InboxStatus.connected.value
        and inbox.last_error is None
        and not inbox.read_failures
        and inbox.last_read_error is None
    )


async def check_due_inboxes(ctx: CheckRuntime, now: datetime, limit: int = BATCH) -> int:
    """Check the live inboxes not checked for `inbox_check_interval` seconds; how many were checked.

    A healthy inbox the IMAP reader has been reading without error within the interval (or keeps IDLE-ing
    on, its last full read within `inbound_idle_recheck` and a lease) is checked on SMTP alone: the reader's
    own sessions prove its IMAP side, and it reports a failed IMAP login at once (`report_read_failure`),
    which makes the inbox due a full check. At a thousand IDLE-ing inboxes that halves the logins the checks
    cost."""
    settings = ctx.settings
    cutoff = now - timedelta(seconds=settings.inbox_check_interval)
    idle_since = now - timedelta(seconds=settings.inbound_idle_recheck + settings.inbound_lease_seconds)
    async with ctx.database.transaction() as session:
        maintenance = InboxMaintenance(session)
        claimed = [
            inbox
            for inbox in await maintenance.due_for_check(cutoff, limit)
            if await maintenance.claim(inbox.id, cutoff, now)
        ]
        read_by_reader = await maintenance.read_without_error(
            (inbox.id for inbox in claimed if _healthy(inbox)), cutoff, idle_since
        )
    if not claimed:
        return 0
    outcomes = await asyncio.gather(
        *(
            probe(inbox, settings, ctx.http, now, imap_login=inbox.id not in read_by_reader)
            for inbox in claimed
        ),
        return_exceptions=True,
    )
    async with ctx.database.transaction() as session:
        for inbox, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # A bug, not a mail server's answer: keep the status, try again next interval.
                log.error(
                    "inbox check failed", inbox_id=inbox.id, error=f"{type(outcome).__name__}: {outcome}"
                )
                continue
            await apply_outcome(session, inbox, outcome, settings, now)
    return len(claimed)
