"""Addresses as a session without SMTPUTF8 carries them (RFC 5321 envelope, RFC 5322 headers)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def ascii_address(address: str) -> str | None:
    """The address in ASCII: an internationalized domain in its IDNA form (`ana@xn--bcher-kva.de`); None when
    the local part itself is not ASCII (`jörg@…`), which only an SMTPUTF8 session could carry."""
    if address.isascii():
        return address
    try:
        return validate_email(address, check_deliverability=False).ascii_email
    except EmailNotValidError:
        return None


def ascii_domain(domain: str) -> str:
    """A domain in IDNA form, for the right-hand side of a Message-ID (`bücher.de` → `xn--bcher-kva.de`)."""
    if domain.isascii():
        return domain
    address = ascii_address(f"postmaster@{domain}")
    return address.rpartition("@")[2] if address else "invalid"
