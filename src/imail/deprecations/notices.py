"""Monthly warnings to the workspaces still using something deprecated, from six months before its sunset
until it: an email to the workspace's contact address through the operator's SMTP server
(IMAIL_SYSTEM_SMTP_SERVER), and an `api.deprecation_warning` event to each ledger whose keys used it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import structlog

from imail.config import Settings
from imail.db import Database
from imail.deprecations.repository import DeprecationRepository
from imail.events.service import record_event
from imail.kit import versions
from imail.kit.tenancy import Tenant
from imail.kit.versions.base import Deprecation, add_months
from imail.mail import smtp
from imail.mail.endpoint import Endpoint, MailConnectionError, MailRejected, parse_server

log = structlog.get_logger("imail.deprecations")


@dataclass(frozen=True)
class Use:
    key_id: str
    key_name: str
    livemode: bool
    count: int
    first_used_at: datetime
    last_used_at: datetime


def add_months_at(moment: datetime, months: int) -> datetime:
    day = add_months(moment.date(), months)
    return moment.replace(year=day.year, month=day.month, day=day.day)


def due(deprecation: Deprecation, now: datetime) -> bool:
    return deprecation.warn_from <= now.date() < deprecation.sunset


def notice_text(deprecation: Deprecation, workspace_name: str, uses: list[Use], changelog_url: str) -> str:
    what = {"route": "The endpoint", "field": "The request field", "event": "The webhook event type"}[
        deprecation.kind
    ]
    lines = [
        f"{what} {deprecation.target} was deprecated on {deprecation.deprecated_on.isoformat()} and stops "
        "working on "
        f"{deprecation.sunset.isoformat()}.",
        "",
        deprecation.note,
        "",
        f"API keys of the workspace {workspace_name} that still use it:",
    ]
    for use in uses:
        ledger = "live" if use.livemode else "test"
        lines.append(
            f"- {use.key_name or '(unnamed)'} ({use.key_id}, {ledger}): {use.count} "
            f"{'call' if use.count == 1 else 'calls'}, last on {use.last_used_at.date().isoformat()}"
        )
    lines += ["", f"What changed and what to use instead: {changelog_url}", ""]
    return "\n".join(lines)


def _system_endpoint(settings: Settings) -> Endpoint | None:
    if not settings.system_smtp_server:
        return None
    host, port, security = parse_server(settings.system_smtp_server)
    return Endpoint(host, port, security, settings.system_smtp_username, settings.system_smtp_password)


async def _email(settings: Settings, to: str, subject: str, text: str, now: datetime) -> bool:
    endpoint = _system_endpoint(settings)
    if endpoint is None:
        return False
    message = EmailMessage()
    message["From"] = settings.system_mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=settings.system_mail_from.rpartition("@")[2] or "localhost")
    message.set_content(text)
    # The operator's own server, set in the environment, not by a tenant: the mail address policy is for
    # tenants' hosts, so a relay on loopback or the LAN is fine here.
    await smtp.send_message(
        endpoint,
        settings.system_mail_from,
        [to],
        message.as_bytes(),
        timeout=settings.mail_timeout,
        ca_file=settings.mail_ca_file,
        allow_private=True,
    )
    return True


async def send_deprecation_warnings(database: Database, settings: Settings, now: datetime) -> int:
    """Warn each workspace due a warning (none this past month) about each deprecation in its warning window;
    returns how many workspaces were warned. No connection is held while the email goes out."""
    warned = 0
    for deprecation in versions.DEPRECATIONS:
        if not due(deprecation, now):
            continue
        async with database.read() as session:
            workspace_ids = await DeprecationRepository(session).workspaces_using(deprecation.target)
        for workspace_id in workspace_ids:
            async with database.read() as session:
                repo = DeprecationRepository(session)
                last = await repo.last_notice(workspace_id, deprecation.target)
                if last is not None and last.sent_at > add_months_at(now, -1):
                    continue
                workspace = await repo.workspace(workspace_id)
                rows = await repo.usage(workspace_id, deprecation.target)
            if workspace is None or not rows:
                continue
            uses = [
                Use(u.api_key_id, name, livemode, u.count, u.first_used_at, u.last_used_at)
                for u, name, livemode in rows
            ]
            changelog_url = (
                f"{settings.public_url.rstrip('/')}/changelog#{deprecation.deprecated_on.isoformat()}"
            )
            emailed_to = None
            if workspace.contact_email:
                subject = f"imail: {deprecation.target} stops working on {deprecation.sunset.isoformat()}"
                try:
                    if await _email(
                        settings,
                        workspace.contact_email,
                        subject,
                        notice_text(deprecation, workspace.name, uses, changelog_url),
                        now,
                    ):
                        emailed_to = workspace.contact_email
                except (MailConnectionError, MailRejected) as exc:
                    # Tried again on the next round: no notice is recorded for this month yet.
                    log.warning(
                        "deprecation warning not emailed",
                        workspace_id=workspace_id,
                        target=deprecation.target,
                        error=str(exc),
                    )
                    continue
            await _record(database, workspace_id, deprecation, uses, now, emailed_to)
            warned += 1
    return warned


async def _record(
    database: Database,
    workspace_id: str,
    deprecation: Deprecation,
    uses: list[Use],
    now: datetime,
    emailed_to: str | None,
) -> None:
    by_ledger: dict[bool, list[Use]] = defaultdict(list)
    for use in uses:
        by_ledger[use.livemode].append(use)
    async with database.transaction() as session:
        for livemode, ledger_uses in sorted(by_ledger.items()):
            await record_event(
                session,
                Tenant(workspace_id, livemode),
                "api.deprecation_warning",
                {
                    "kind": deprecation.kind,
                    "target": deprecation.target,
                    "deprecated_on": deprecation.deprecated_on,
                    "sunset": deprecation.sunset,
                    "note": deprecation.note,
                    "keys": [
                        {
                            "key_id": u.key_id,
                            "key_name": u.key_name,
                            "count": u.count,
                            "first_used_at": u.first_used_at,
                            "last_used_at": u.last_used_at,
                        }
                        for u in ledger_uses
                    ],
                },
            )
        await DeprecationRepository(session).save_notice(workspace_id, deprecation.target, now, emailed_to)
