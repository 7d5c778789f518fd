"""From an inbox row to working SMTP/IMAP logins: decrypted passwords or fresh XOAUTH2 access tokens.

Sending and IMAP polling code use `endpoints_for(inbox, …)` to get the two `Endpoint`s, then
`imail.mail.smtp` / `imail.mail.imap` to talk; on a connection failure they call
`imail.inboxes.monitor.report_connection_failure`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.inboxes import oauth
from imail.inboxes.providers import is_oauth, oauth_provider
from imail.inboxes.repository import InboxRepository
from imail.kit import crypto
from imail.kit.clock import utcnow
from imail.kit.tenancy import tenant_of
from imail.mail import imap, smtp
from imail.mail.endpoint import Endpoint, MailConnectionError, check_address
from imail.models import Inbox
from imail.models.inbox import BackoffCause, InboxStatus

log = structlog.get_logger("imail.inboxes.connection")


@dataclass(frozen=True)
class Endpoints:
    smtp: Endpoint
    imap: Endpoint
    # Set when the provider rotated the refresh token: the new one, encrypted, to store (`keep_rotated_token`)
    # or the next refresh may fail. Access tokens are cached under it already.
    rotated_token: str | None = None


class CredentialsUnavailable(Exception):
    """The inbox cannot log in at all: OAuth not finished, token revoked, or secrets unreadable.

    What it means for the inbox (imail.inboxes.monitor.report_token_failure does it, for any caller):
    `needs_consent`, the user must open the setup_url (again), and `refused`, the provider refuses this
    server's token requests, both disconnect the inbox at once; `token_dead` (invalid_grant) also drops the
    refresh token, so nothing asks the provider again before a new consent; `transient`, the token endpoint
    failed and may work later: the inbox backs off until `retry_at`, still connected."""

    def __init__(
        self,
        detail: str,
        *,
        needs_consent: bool = False,
        token_dead: bool = False,
        refused: bool = False,
        transient: bool = False,
        retry_at: datetime | None = None,
    ):
        self.detail = detail
        self.needs_consent = needs_consent or token_dead
        self.token_dead = token_dead
        self.refused = refused
        self.transient = transient
        self.retry_at = retry_at
        super().__init__(detail)

    @property
    def judged_at_once(self) -> bool:
        """An OAuth inbox's token could not be had: the inbox is disconnected or backs off at once
        (`report_token_failure`), instead of a login check being asked for (which would ask again)."""
        return self.needs_consent or self.refused or self.transient


def consent_again(detail: str) -> str:
    return f"{detail}; open the inbox's setup_url to give imail access again"


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


def oauth_endpoints(inbox: Inbox, access_token: str, rotated_token: str | None = None) -> Endpoints:
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
        rotated_token=rotated_token,
    )


async def endpoints_for(
    inbox: Inbox, settings: Settings, http: httpx.AsyncClient, now: datetime | None = None
) -> Endpoints:
    """Both logins of a stored inbox; raises CredentialsUnavailable when there is nothing to log in with.
    An OAuth inbox's token endpoint is not asked while the inbox waits out its failures (`now` against the
    row's backoff), nor again for a refresh token it declared dead."""
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
        if inbox.status == InboxStatus.setup_pending.value:
            raise CredentialsUnavailable(
                "OAuth setup is not finished: open the setup_url", needs_consent=True
            )
        raise CredentialsUnavailable(
            consent_again(f"{provider.label} no longer accepts imail's access to this inbox"),
            needs_consent=True,
        )
    cached = oauth.ACCESS_TOKENS.get(inbox.id, ciphertext)
    if cached is not None:
        return oauth_endpoints(inbox, cached)
    if oauth.ACCESS_TOKENS.is_dead(inbox.id, ciphertext):
        raise CredentialsUnavailable(
            consent_again(f"{provider.label} refused the refresh token: invalid_grant"), token_dead=True
        )
    until = inbox.send_backoff_until
    if (
        inbox.send_backoff_cause == BackoffCause.oauth.value
        and until is not None
        and until > (now or utcnow())
    ):
        said = inbox.send_backoff_reason or f"{provider.label}'s token endpoint failed"
        raise CredentialsUnavailable(
            f"{said}; next attempt at {until.isoformat()}",
            transient=True,
            retry_at=until,
        )
    try:
        refresh_token = box.decrypt(ciphertext)
    except crypto.InvalidToken:
        raise CredentialsUnavailable(
            "the stored refresh token cannot be decrypted", needs_consent=True
        ) from None
    try:
        tokens = await oauth.ACCESS_TOKENS.refresh_once(
            inbox.id,
            ciphertext,
            lambda: oauth.refresh(http, provider, refresh_token, timeout=mail_timeout(settings)),
        )
    except oauth.OAuthError as exc:
        if exc.invalid_grant:
            raise CredentialsUnavailable(consent_again(exc.detail), token_dead=True) from None
        raise CredentialsUnavailable(exc.detail, refused=not exc.transient, transient=exc.transient) from None
    # Cached under the stored token and, if the provider rotated it, under the new one too: whichever copy of
    # the row a caller holds, its next login reuses the access token instead of refreshing (rotating) again.
    oauth.ACCESS_TOKENS.put(inbox.id, ciphertext, tokens.access_token, tokens.expires_in)
    rotated = None
    if tokens.refresh_token and tokens.refresh_token != refresh_token:
        rotated = box.encrypt(tokens.refresh_token)
        oauth.ACCESS_TOKENS.put(inbox.id, rotated, tokens.access_token, tokens.expires_in)
    return oauth_endpoints(inbox, tokens.access_token, rotated)


async def keep_rotated_token(session: AsyncSession, inbox: Inbox, rotated: str | None) -> None:
    """Store a refresh token the provider rotated while we logged in (`Endpoints.rotated_token`), unless the
    row changed meanwhile (a new consent, or another worker's rotation)."""
    if rotated:
        await InboxRepository(session, tenant_of(inbox)).replace_refresh_token(
            inbox.id, inbox.oauth_refresh_token_encrypted, rotated
        )


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


async def check_endpoints(
    endpoints: Endpoints, settings: Settings, *, imap_login: bool = True
) -> list[MailConnectionError]:
    """Log in to both servers at once, for real (to SMTP only without `imap_login`); the failures, SMTP's
    first (empty: all fine)."""
    timeout = mail_timeout(settings)
    ca_file = settings.mail_ca_file
    allow_private = settings.mail_allow_private
    logins = {
        "smtp": smtp.check_login(
            endpoints.smtp, timeout=timeout, ca_file=ca_file, allow_private=allow_private
        )
    }
    if imap_login:
        logins["imap"] = imap.check_login(
            endpoints.imap, timeout=timeout, ca_file=ca_file, allow_private=allow_private
        )
    results = await asyncio.gather(*logins.values(), return_exceptions=True)
    failures: list[MailConnectionError] = []
    for side, result in zip(logins, results, strict=True):
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
