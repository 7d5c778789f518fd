"""Lead verification: would an address take mail? Checked without sending anything.

Per address: its syntax (imail.leads.emails); whether its domain takes mail, through the DNS
(`IMAIL_DNS_RESOLVER`): its MX records, or else an A/AAAA record (RFC 5321 §5.1: with no MX, mail goes to the
domain's own address); a domain on the maintained list of disposable-address providers (the
`disposable-email-domains` package); a role local part (info@, sales@…), which reaches a team rather than a
person. No SMTP probe is made: mailbox providers count `RCPT TO` probes without a message against the sending
address (and many accept every recipient anyway).

The outcome is one of:
    valid    the domain takes mail and nothing about the address is doubtful
    risky    deliverable but a poor prospect: a role address or a disposable domain (reasons say which)
    invalid  would bounce: bad syntax, a domain that does not exist, takes no mail, or says so (a null MX)
    unknown  the DNS did not answer (timeout, SERVFAIL): nothing is known; verify again later

A verification job looks each domain up once (its leads are chunked in domain order, and a worker remembers
the job's answers: see DomainCache), and never by two look-ups at the same time."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS

from imail.config import Settings
from imail.kit.dns import DnsUnavailable, Resolver, resolver
from imail.leads.emails import InvalidEmail, normalize_email
from imail.models.lead import VerificationStatus

# Local parts that reach a function, not a person (and are often shared inboxes that report spam readily).
ROLE_LOCAL_PARTS = frozenset(
    {
        "abuse",
        "accounts",
        "admin",
        "administrator",
        "billing",
        "careers",
        "contact",
        "customerservice",
        "enquiries",
        "help",
        "hello",
        "hostmaster",
        "hr",
        "info",
        "inquiries",
        "jobs",
        "marketing",
        "media",
        "no-reply",
        "noreply",
        "do-not-reply",
        "donotreply",
        "office",
        "postmaster",
        "press",
        "privacy",
        "sales",
        "security",
        "support",
        "team",
        "webmaster",
    }
)

# Reason codes, stored on the lead in `verification_reasons`.
SYNTAX = "syntax"
NO_DOMAIN = "domain_not_found"  # NXDOMAIN, or no MX and no address
NULL_MX = "null_mx"  # RFC 7505: the domain says it takes no mail
NO_MX_A_FALLBACK = "no_mx_a_fallback"  # no MX, delivered to the domain's A/AAAA (still valid)
DNS_UNAVAILABLE = "dns_unavailable"
DISPOSABLE = "disposable_domain"
ROLE = "role_address"


@dataclass(frozen=True)
class DomainCheck:
    takes_mail: bool | None  # None: the DNS did not answer
    reasons: tuple[str, ...] = ()


async def check_domain(dns: Resolver, domain: str) -> DomainCheck:
    try:
        mx = await dns.records(domain, "MX")
        if mx:
            hosts = [record.partition(" ")[2].strip() for record in mx]
            if all(host in (".", "") for host in hosts):
                return DomainCheck(False, (NULL_MX,))
            return DomainCheck(True)
        if await dns.records(domain, "A") or await dns.records(domain, "AAAA"):
            return DomainCheck(True, (NO_MX_A_FALLBACK,))
        return DomainCheck(False, (NO_DOMAIN,))
    except DnsUnavailable:
        return DomainCheck(None, (DNS_UNAVAILABLE,))


def _parts(email: str) -> tuple[str, str] | None:
    try:
        normalized = normalize_email(email)
    except InvalidEmail:
        return None
    local, _, domain = normalized.rpartition("@")
    return local, domain


def judge(email: str, domain_check: DomainCheck | None) -> tuple[str, list[str]]:
    """The status and reasons for an address whose domain was checked (None: its syntax is bad)."""
    parts = _parts(email)
    if parts is None or domain_check is None:
        return VerificationStatus.invalid.value, [SYNTAX]
    local, domain = parts
    reasons = list(domain_check.reasons)
    doubtful = []
    if domain in DISPOSABLE_DOMAINS:
        doubtful.append(DISPOSABLE)
    # `sales+eu@` is still sales@ (a +tag is dropped); only the exact function names count.
    if local.split("+", 1)[0] in ROLE_LOCAL_PARTS:
        doubtful.append(ROLE)
    reasons += doubtful
    if domain_check.takes_mail is False:
        return VerificationStatus.invalid.value, reasons
    if domain_check.takes_mail is None:
        return VerificationStatus.unknown.value, reasons
    return (VerificationStatus.risky.value if doubtful else VerificationStatus.valid.value), reasons


class DomainCache:
    """Domain answers of recent jobs, by (job, domain): a job looks a domain up once even when its leads span
    several chunks, while a new job asks the DNS again (a fixed domain is seen as fixed). Bounded, oldest
    out."""

    def __init__(self, size: int = 20000):
        self.size = size
        self.entries: OrderedDict[tuple[str, str], DomainCheck] = OrderedDict()

    def get(self, key: tuple[str, str]) -> DomainCheck | None:
        return self.entries.get(key)

    def put(self, key: tuple[str, str], check: DomainCheck) -> None:
        self.entries[key] = check
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


_cache = DomainCache()


async def verify_emails(
    settings: Settings, emails: Iterable[str], scope: str | None = None
) -> dict[str, tuple[str, list[str]]]:
    """email → (status, reasons). Each distinct domain is looked up once (once per `scope`, a job's id, across
    calls), `verification_concurrency` domains at a time: never two look-ups of one domain at once."""
    emails = list(emails)
    domains = {parts[1] for email in emails if (parts := _parts(email)) is not None}
    dns = resolver(settings.dns_resolver, settings.dns_timeout)
    slots = asyncio.Semaphore(settings.verification_concurrency)

    async def one(domain: str) -> tuple[str, DomainCheck]:
        key = (scope or "", domain)
        if scope is not None and (known := _cache.get(key)) is not None:
            return domain, known
        async with slots:
            check = await check_domain(dns, domain)
        if scope is not None:
            _cache.put(key, check)
        return domain, check

    checked = dict(await asyncio.gather(*(one(d) for d in sorted(domains))))
    results = {}
    for email in emails:
        parts = _parts(email)
        results[email] = judge(email, checked.get(parts[1]) if parts else None)
    return results


def domain_of(email: str) -> str:
    return email.rpartition("@")[2]
