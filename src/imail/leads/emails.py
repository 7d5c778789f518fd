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

from email_validator import EmailNotValidError, validate_email

# RFC 5322 dot-atom over the ASCII atext characters, no leading, trailing or doubled dots, 1–64 characters.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_ASCII_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")


class InvalidEmail(ValueError):
    pass


@lru_cache(maxsize=65536)
def _domain(domain: str) -> str:
    """The normalized (lower-case) domain, or InvalidEmail with email-validator's words."""
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
    if at and len(value) <= 254 and len(local) <= 64 and _LOCAL.fullmatch(local) and _ASCII_DOMAIN.fullmatch(domain):
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
