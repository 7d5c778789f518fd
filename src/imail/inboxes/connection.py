"""From an inbox row to working SMTP/IMAP logins: decrypted passwords or fresh XOAUTH2 access tokens.

Sending and IMAP polling code use `endpoints_for(inbox, …)` to get the two `Endpoint`s, then
`imail.mail.smtp` / `imail.mail.imap` to talk; on a connection failure they call
`imail.inboxes.monitor.report_connection_failure`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import structlog

from imail.config import Settings
from imail.inboxes import oauth
from imail.inboxes.providers import is_oauth, oauth_provider
from imail.kit import crypto
from imail.mail import imap, smtp
from imail.mail.endpoint import Endpoint, MailConnectionError, check_address
from imail.models import Inbox

log = structlog.get_logger("imail.inboxes.connection")


@dataclass(frozen=True)
class Endpoints:
    smtp: Endpoint
    imap: Endpoint
    # Set when the provider rotated the refresh token: store it (encrypted) or the next refresh fails.
    new_refresh_token: str | None = None


class CredentialsUnavailable(Exception):
    """The inbox cannot log in at all: OAuth not finished, token revoked, or secrets unreadable."""

    def __init__(self, detail: str, *, needs_consent: bool = False):
        self.detail = detail
        self.needs_consent = needs_consent
        super().__init__(detail)


def mail_timeout(settings: Settings) -> float:
    return settings.mail_timeout


def password_endpoints(inbox: Inbox, smtp_password: str, imap_password: str) -> Endpoints:
    return Endpoints(
        smtp=Endpoint(
            inbox.smtp_host or "",
            inbox.smtp_port or 0,
            inbox.smtp_security or "ssl",
            inbox.smtp_username or inbox.email,
            password=smtp_password,
        ),
        imap=Endpoint(
            inbox.imap_host or "",
            inbox.imap_port or 0,
            inbox.imap_security or "ssl",
            inbox.imap_username or inbox.email,
            password=imap_password,
        ),
    )


def oauth_endpoints(inbox: Inbox, access_token: str, new_refresh_token: str | None = None) -> Endpoints:
    return Endpoints(
        smtp=Endpoint(
            inbox.smtp_host or "",
            inbox.smtp_port or 0,
            inbox.smtp_security or "ssl",
            inbox.email,
            oauth_token=access_token,
        ),
        imap=Endpoint(
            inbox.imap_host or "",
            inbox.imap_port or 0,
            inbox.imap_security or "ssl",
            inbox.email,
            oauth_token=access_token,
        ),
        new_refresh_token=new_refresh_token,
    )


async def endpoints_for(inbox: Inbox, settings: Settings, http: httpx.AsyncClient) -> Endpoints:
    """Both logins of a stored inbox; raises CredentialsUnavailable when there is nothing to log in with."""
    box = crypto.secret_box(settings)
    if not is_oauth(inbox.provider):
        if not inbox.smtp_password_encrypted or not inbox.imap_password_encrypted:
            raise CredentialsUnavailable("the inbox has no stored passwords")
        try:
            return password_endpoints(
                inbox, box.decrypt(inbox.smtp_password_encrypted), box.decrypt(inbox.imap_password_encrypted)
            )
        except crypto.InvalidToken:
            raise CredentialsUnavailable(
                "the stored passwords cannot be decrypted with IMAIL_SECRET_KEY or IMAIL_SECRET_KEYS_OLD"
            ) from None
    provider = oauth_provider(settings, inbox.provider)
    if provider is None:
        raise CredentialsUnavailable(f"{inbox.provider} OAuth is not configured on this server")
    ciphertext = inbox.oauth_refresh_token_encrypted
    if not ciphertext:
        raise CredentialsUnavailable("OAuth setup is not finished: open the setup_url", needs_consent=True)
    cached = oauth.ACCESS_TOKENS.get(inbox.id, ciphertext)
    if cached is not None:
        return oauth_endpoints(inbox, cached)
    try:
        refresh_token = box.decrypt(ciphertext)
    except crypto.InvalidToken:
        raise CredentialsUnavailable(
            "the stored refresh token cannot be decrypted", needs_consent=True
        ) from None
    try:
        tokens = await oauth.refresh(http, provider, refresh_token, timeout=mail_timeout(settings))
    except oauth.OAuthError as exc:
        raise CredentialsUnavailable(exc.detail, needs_consent=exc.invalid_grant) from None
    rotated = tokens.refresh_token if tokens.refresh_token and tokens.refresh_token != refresh_token else None
    if rotated is None:
        oauth.ACCESS_TOKENS.put(inbox.id, ciphertext, tokens.access_token, tokens.expires_in)
    return oauth_endpoints(inbox, tokens.access_token, rotated)


async def refused_hosts(
    endpoints: Endpoints, settings: Settings, *, resolve_names: bool = True
) -> list[MailConnectionError]:
    """The sides whose host the address policy refuses (checked before anything is dialled, and again at the
    dial); without `resolve_names` only IP literals and local names are judged (test mode, which never
    dials)."""
    failures: list[MailConnectionError] = []
    for side, endpoint in (("smtp", endpoints.smtp), ("imap", endpoints.imap)):
        try:
            await check_address(
                endpoint, side, allow_private=settings.mail_allow_private, resolve_names=resolve_names
            )
        except MailConnectionError as exc:
            failures.append(exc)
    return failures


async def check_endpoints(endpoints: Endpoints, settings: Settings) -> list[MailConnectionError]:
    """Log in to both servers at once, for real; the failures, SMTP's first (empty: both fine)."""
    timeout = mail_timeout(settings)
    ca_file = settings.mail_ca_file
    allow_private = settings.mail_allow_private
    results = await asyncio.gather(
        smtp.check_login(endpoints.smtp, timeout=timeout, ca_file=ca_file, allow_private=allow_private),
        imap.check_login(endpoints.imap, timeout=timeout, ca_file=ca_file, allow_private=allow_private),
        return_exceptions=True,
    )
    failures: list[MailConnectionError] = []
    for side, result in zip(("smtp", "imap"), results, strict=True):
        if isinstance(result, MailConnectionError):
            failures.append(result)
        elif isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            # A client library tripping over what a non-mail service sent: said in our words (its own message
            # can quote the bytes), and logged for the operator.
            log.warning("mail login check failed unexpectedly", side=side, error=type(result).__name__)
            endpoint = endpoints.smtp if side == "smtp" else endpoints.imap
            failures.append(MailConnectionError(side, "protocol", endpoint))
    return failures
