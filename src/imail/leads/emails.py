"""Email syntax, checked with email-validator (never a DNS lookup in the request path), fast enough for bulk.

email-validator spends most of its time on the domain (UTS-46 checks per character); domains repeat a lot in
lead lists, so each distinct domain goes through it once (cached). The local part of a plain ASCII dot-atom
address is checked by a pattern that accepts only what email-validator itself accepts; every other address
(quoted, Unicode, IP literal, odd punctuation) goes through email-validator whole. Tests hold the two paths
to the same answers.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

# RFC 5322 dot-atom over the ASCII atext characters, no leading, trailing or doubled dots, 1–64 characters.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_ASCII_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")


class InvalidEmail(ValueError):
    pass


# A plain LDH host name (labels of letters, digits and inner hyphens, 1–63 characters, a final label ending in
# a letter) that email-validator accepts as it is: no Punycode (`xn--`), no reserved `ab--` label, no
# special-use name.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_HOST = re.compile(rf"(?:{_LABEL}\.)+(?:[a-z0-9][a-z0-9-]{{0,61}})?[a-z]")
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)


def _plain_host(domain: str) -> bool:
    return (
        len(domain) <= 253
        and _PLAIN_HOST.fullmatch(domain) is not None
        and "--" not in domain
        and not domain.startswith("-")
        and not any(domain == d or domain.endswith("." + d) for d in _SPECIAL_USE)
    )


@lru_cache(maxsize=65536)
def _domain(domain: str) -> str:
    """The normalized (lower-case) domain, or InvalidEmail with email-validator's words. Plain host names
    (most lead domains, each new to the cache in a B2B list) skip email-validator's per-character Unicode
    checks, which would give the same answer."""
    lowered = domain.lower()
    if _plain_host(lowered):
        return lowered
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain.lower()
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None


def normalize_email(value: str) -> str:
    """The address as stored: validated by email-validator, normalized, lower-cased. Raises InvalidEmail."""
    if not isinstance(value, str):
        raise InvalidEmail("The email address must be a string.")
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if (
        at
        and len(value) <= 254
        and len(local) <= 64
        and _LOCAL.fullmatch(local)
        and _ASCII_DOMAIN.fullmatch(domain)
    ):
        return f"{local.lower()}@{_domain(domain)}"
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None


def normalize_domain(value: str) -> str:
    """A bare domain (`example.com`, a leading `@` tolerated), validated like an address's domain."""
    if not isinstance(value, str):
        raise InvalidEmail("The domain must be a string.")
    domain = value.strip().removeprefix("@")
    if "@" in domain:
        raise InvalidEmail("This looks like an email address, not a domain; suppress it as `email` instead.")
    if not domain:
        raise InvalidEmail("The domain is empty.")
    return _domain(domain)


def domain_of(email: str) -> str:
    return email.rpartition("@")[2]
