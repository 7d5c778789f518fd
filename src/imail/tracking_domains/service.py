"""Custom tracking domains: what a valid one looks like, its DNS check, who owns a Host, which host a tenant's
links use.

A domain is used only once DNS shows it points to this server: a CNAME to the host of IMAIL_PUBLIC_URL, or
(for a name that cannot carry a CNAME) A/AAAA records all among IMAIL_TRACKING_DOMAIN_ADDRESSES. Until then,
and whenever a re-check finds it pointing elsewhere, links fall back to IMAIL_PUBLIC_URL. A domain belongs to
one workspace: its workspace setting and its inboxes may share it, another workspace may not name it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.db import Database
from imail.errors import Conflict, InvalidField
from imail.kit.dns import DnsUnavailable, resolver
from imail.models import Inbox, Workspace
from imail.models.tracking import TrackingDomainStatus
from imail.tracking_domains.repository import TrackingDomainRepository

log = structlog.get_logger("imail.tracking_domains")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NOT_A_HOSTNAME = "a hostname like track.example.com (no scheme, port or path)"
RECHECK_BATCH = 20


def public_host(settings: Settings) -> str:
    return (urlsplit(settings.public_url).hostname or "").lower()


def normalise(value: str | None, settings: Settings, field: str = "tracking_domain") -> str | None:
    """The domain as stored (lower case, IDNA, no final dot); None or empty clears. 400 naming `field`
    otherwise."""
    if value is None or not value.strip():
        return None
    name = value.strip().lower().rstrip(".")
    if any(c in name for c in "/:@?#[] \t") or "://" in value:
        raise InvalidField(f"{field}: must be {_NOT_A_HOSTNAME}; got {value!r}", field)
    try:
        ip_address(name)
    except ValueError:
        pass
    else:
        raise InvalidField(f"{field}: must be a hostname, not an IP address", field)
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidField(f"{field}: must be {_NOT_A_HOSTNAME}; got {value!r}", field) from None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidField(f"{field}: must be {_NOT_A_HOSTNAME}; got {value!r}", field)
    if labels[-1].isdigit():
        raise InvalidField(f"{field}: must be {_NOT_A_HOSTNAME}; got {value!r}", field)
    if name == public_host(settings):
        raise InvalidField(f"{field}: {name} is this server's own host (IMAIL_PUBLIC_URL)", field)
    return name


@dataclass(frozen=True)
class Verdict:
    status: TrackingDomainStatus | None  # None: DNS could not be asked, the status stays what it was
    reason: str | None


async def check(settings: Settings, domain: str) -> Verdict:
    """Ask DNS whether `domain` points to this server."""
    target = public_host(settings)
    addresses = settings.tracking_addresses()
    dns = resolver(settings.dns_resolver, settings.dns_timeout)
    try:
        cname = await dns.cname(domain)
        if cname is not None:
            if cname == target:
                return Verdict(TrackingDomainStatus.verified, None)
            return Verdict(TrackingDomainStatus.failed, f"{domain} is a CNAME to {cname}, not to {target}")
        if addresses:
            found = {
                str(ip_address(record))
                for rtype in ("A", "AAAA")
                for record in await dns.records(domain, rtype)
            }
            if found and found <= addresses:
                return Verdict(TrackingDomainStatus.verified, None)
            if found:
                return Verdict(
                    TrackingDomainStatus.failed,
                    f"{domain} has the addresses {', '.join(sorted(found))}, not those of this server "
                    f"({', '.join(sorted(addresses))}); or make it a CNAME to {target}",
                )
    except DnsUnavailable as exc:
        return Verdict(None, f"DNS did not answer, the domain will be checked again: {exc}")
    return Verdict(
        TrackingDomainStatus.failed, f"{domain} has no CNAME record: add `{domain}. CNAME {target}.`"
    )


def _apply(row: Any, verdict: Verdict, now: datetime) -> None:
    if verdict.status is not None:
        row.tracking_domain_status = verdict.status.value
    row.tracking_domain_reason = verdict.reason
    row.tracking_domain_checked_at = now


async def verify(settings: Settings, row: Workspace | Inbox, now: datetime) -> None:
    """Check the row's domain now and record the outcome (a row without a domain is left as it is)."""
    if row.tracking_domain:
        _apply(row, await check(settings, row.tracking_domain), now)


@dataclass(frozen=True)
class Change:
    """A new value for a tracking domain, normalised and already checked in DNS (None: remove it)."""

    domain: str | None
    verdict: Verdict | None


async def prepare(settings: Settings, value: str | None) -> Change:
    """Validate (400) and ask DNS, before the request touches the database: no transaction waits on DNS."""
    domain = normalise(value, settings)
    return Change(domain, await check(settings, domain) if domain else None)


async def set_domain(
    session: AsyncSession, row: Workspace | Inbox, workspace_id: str, change: Change, now: datetime
) -> None:
    """Set (or remove) the row's domain with its DNS verdict. 409 when another workspace has named it."""
    if change.domain is None or change.verdict is None:
        row.tracking_domain = row.tracking_domain_status = None
        row.tracking_domain_checked_at = row.tracking_domain_reason = None
        return
    if await TrackingDomainRepository(session).owners(change.domain) - {workspace_id}:
        raise Conflict(f"tracking_domain: {change.domain} is used by another workspace", "tracking_domain")
    if change.domain != row.tracking_domain:
        row.tracking_domain = change.domain
        row.tracking_domain_status = TrackingDomainStatus.pending.value
        row.tracking_domain_checked_at = row.tracking_domain_reason = None
    _apply(row, change.verdict, now)


def view(row: Workspace | Inbox) -> dict[str, Any]:
    """The four API fields of a workspace or an inbox."""
    return {
        "tracking_domain": row.tracking_domain,
        "tracking_domain_status": row.tracking_domain_status,
        "tracking_domain_checked_at": row.tracking_domain_checked_at,
        "tracking_domain_reason": row.tracking_domain_reason,
    }


def verified_host(row: Any) -> str | None:
    """The row's domain when it is verified, else None (links then use IMAIL_PUBLIC_URL)."""
    if row is not None and row.tracking_domain_status == TrackingDomainStatus.verified.value:
        return row.tracking_domain
    return None


async def workspace_hosts(session: AsyncSession, workspace_ids: Any) -> dict[str, str]:
    """Each workspace's verified domain, by workspace id (workspaces without one are absent)."""
    return await TrackingDomainRepository(session).verified_for_workspaces(workspace_ids)


async def owner_of(session: AsyncSession, host: str) -> str | None:
    """The workspace that named `host` as a tracking domain (any status), or None."""
    owners = await TrackingDomainRepository(session).owners(host)
    return min(owners) if owners else None


async def is_verified(session: AsyncSession, host: str) -> bool:
    """Whether some workspace or inbox has `host` as a verified tracking domain."""
    return await TrackingDomainRepository(session).is_verified(host)


async def recheck_due(database: Database, settings: Settings, now: datetime) -> int:
    """Check again the domains last checked over IMAIL_TRACKING_DOMAIN_CHECK_INTERVAL ago (pending ones keep
    being tried, so adding the CNAME later is enough; a verified one whose CNAME went is no longer used). DNS
    is asked outside any transaction."""
    before = now - timedelta(seconds=settings.tracking_domain_check_interval)
    done = 0
    for model in (Workspace, Inbox):
        async with database.read() as session:
            due = [
                (row.id, row.tracking_domain)
                for row in await TrackingDomainRepository(session).due(model, before, RECHECK_BATCH)
            ]
        for row_id, domain in due:
            verdict = await check(settings, domain)
            async with database.transaction() as session:
                row = await TrackingDomainRepository(session).row(model, row_id)
                if row is not None and row.tracking_domain == domain:  # unchanged since it was read
                    if verdict.status is not None and verdict.status.value != row.tracking_domain_status:
                        log.info("tracking domain status", domain=domain, status=verdict.status.value)
                    _apply(row, verdict, now)
            done += 1
    return done
