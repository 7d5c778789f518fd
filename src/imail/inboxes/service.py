"""Inbox rules: connect only after real logins, OAuth setup, limits, deletion guard, reconnect, warmup state.

Test mode (a test key's ledger) never opens a connection, as for sends: logins are assumed to succeed and the
connection monitor leaves test inboxes alone, so a customer's CI can build campaigns without a real mailbox.

Every operation that waits on a mail server or an OAuth provider (connect, PATCH of server settings,
reconnect, the OAuth callback) reads what it needs through `Database.read()`, waits with no connection checked
out and inside a workspace slot (inboxes.outbound), then writes in the request's session, checking the row
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.auth.tiers import policy
from imail.config import Settings
from imail.errors import Conflict, InvalidField, MissingField, NotFound
from imail.inboxes import backoff, connection, monitor, oauth, pausing
from imail.inboxes.health import health_score
from imail.inboxes.outbound import OutboundContext, outbound_slot
from imail.inboxes.providers import is_oauth, oauth_provider
from imail.inboxes.repository import InboxMaintenance, InboxRepository
from imail.inboxes.schemas import Inbox as InboxView
from imail.inboxes.schemas import InboxCreate, InboxUpdate
from imail.kit import crypto
from imail.kit.clock import utcnow
from imail.kit.ids import has_prefix
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant, tenant_of
from imail.mail.endpoint import MailConnectionError
from imail.models import Inbox
from imail.models.inbox import InboxStatus, WarmupStatus
from imail.tracking_domains import service as tracking_domains
from imail.warmup import service as warmup
from imail.warmup.schemas import WarmupSettings

DEFAULT_DAILY_LIMIT = 50
DEFAULT_GAP_MINUTES = 10
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
SERVER_FIELDS = tuple(
    f"{side}_{part}"
    for side in ("smtp", "imap")
    for part in ("host", "port", "security", "username", "password")
)
NOT_NULL_ON_UPDATE = (
    "name",
    "daily_limit",
    "sending_gap_minutes",
    "sent_folder_mode",
    *(f for f in SERVER_FIELDS if not f.endswith("_username")),
)


# --- views ------------------------------------------------------------------------------------------------


# The `Inbox` schema's fields read off the row (its columns and properties) as they are (never a secret: the
# schema names none).
_ROW_FIELDS = tuple(name for name in InboxView.model_fields if hasattr(Inbox, name))


def view(inbox: Inbox, figures: warmup.Figures | None, ctx: OutboundContext) -> dict[str, Any]:
    """The API view of a row, as plain data for the `Inbox` schema: its columns, and the computed
    health_score, warmup and setup_url."""
    data: dict[str, Any] = {name: getattr(inbox, name) for name in _ROW_FIELDS}
    data["health_score"] = health_score(inbox.status, figures.stats if figures else None)
    data["warmup"] = figures.warmup if figures else None
    url = None
    if is_oauth(inbox.provider) and inbox.status != InboxStatus.connected.value and inbox.oauth_state_nonce:
        provider = oauth_provider(ctx.settings, inbox.provider)
        if provider is not None:
            tenant = tenant_of(inbox)
            url = oauth.setup_url(
                ctx.settings, provider, inbox.id, tenant, inbox.oauth_state_nonce, inbox.email
            )
    data["setup_url"] = url
    return data


async def with_views(
    session: AsyncSession, tenant: Tenant, inboxes: list[Inbox], ctx: OutboundContext
) -> list[dict[str, Any]]:
    """The rows' API views (see `view`): health_score from the last 7 days' campaign sends, bounces and
    replies (analytics rollups) and warmup placement (imail.warmup)."""
    found = await warmup.figures(session, tenant, inboxes, utcnow().date())
    return [view(i, found.get(i.id), ctx) for i in inboxes]


# --- reads ------------------------------------------------------------------------------------------------


async def list_inboxes(session: AsyncSession, caller: Caller, params: PageParams) -> list[Inbox]:
    return await InboxRepository(session, caller.tenant).page(params)


async def find_inbox(session: AsyncSession, tenant: Tenant, inbox_id: str) -> Inbox | None:
    return await InboxRepository(session, tenant).get(inbox_id)


async def get_inbox(session: AsyncSession, tenant: Tenant, inbox_id: str) -> Inbox:
    inbox = await InboxRepository(session, tenant).get(inbox_id) if has_prefix(inbox_id, "inb") else None
    if inbox is None:
        raise NotFound(
            f"No inbox {inbox_id} in this workspace's {'live' if tenant.livemode else 'test'} data"
        )
    return inbox


# --- helpers ----------------------------------------------------------------------------------------------


def _check_daily_limit(caller: Caller, value: int | None) -> None:
    if value is None:
        return
    tier = policy(caller.tier)
    if not 1 <= value <= tier.max_campaign_daily_limit:
        raise InvalidField(
            f"daily_limit must be between 1 and {tier.max_campaign_daily_limit} on {tier.label} tier",
            "daily_limit",
        )


def _smtp_defaults(port: int | None, security: str | None) -> tuple[int, str]:
    security = security or ("ssl" if port == 465 else "starttls")
    return port or SMTP_PORTS[security], security


def _imap_defaults(port: int | None, security: str | None) -> tuple[int, str]:
    security = security or ("starttls" if port == 143 else "ssl")
    return port or IMAP_PORTS[security], security


def _login_error(failures: list[MailConnectionError]) -> InvalidField:
    """400 naming the side (and field) that failed, in the server's own words."""
    first = failures[0]
    message = first.message
    for other in failures[1:]:
        message += f" (and {other.message})"
    return InvalidField(message + "; nothing was saved", first.field)


async def _verify(
    session: AsyncSession, endpoints: connection.Endpoints, caller: Caller, ctx: OutboundContext
) -> None:
    """Refuse hosts the address policy forbids (400, before anything is dialled), then log in to both servers
    for real (live mode; test mode only judges IP literals and local names) and raise 400 on any failure."""
    failures = await connection.refused_hosts(endpoints, ctx.settings, resolve_names=caller.livemode)
    if not failures and caller.livemode:
        async with outbound_slot(ctx, session, caller.workspace_id):
            failures = await connection.check_endpoints(endpoints, ctx.settings)
    if failures:
        raise _login_error(failures)


async def _duplicate_guard(repo: InboxRepository, email: str) -> None:
    existing = await repo.by_email(email)
    if existing is not None:
        raise Conflict(f"{email} is already connected in this workspace as {existing.id}", "email")


async def _flush_or_conflict(session: AsyncSession, email: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"{email} is already connected in this workspace", "email") from None


# --- create -----------------------------------------------------------------------------------------------


async def create_inbox(
    session: AsyncSession, caller: Caller, body: InboxCreate, ctx: OutboundContext
) -> Inbox:
    _check_daily_limit(caller, body.daily_limit)
    repo = InboxRepository(session, caller.tenant)
    common = dict(
        provider=body.provider,
        email=body.email,
        name=body.name,
        signature=body.signature,
        daily_limit=body.daily_limit or DEFAULT_DAILY_LIMIT,
        sending_gap_minutes=DEFAULT_GAP_MINUTES
        if body.sending_gap_minutes is None
        else body.sending_gap_minutes,
        warmup_status=WarmupStatus.off.value,
        sent_folder_mode=body.sent_folder_mode,
    )
    if is_oauth(body.provider):
        return await _create_oauth_inbox(session, repo, body, common, ctx)

    for name in ("smtp_host", "smtp_password", "imap_host", "imap_password"):
        if getattr(body, name) is None:
            raise MissingField(f"{name} is required to connect a custom SMTP/IMAP inbox", name)
    async with ctx.database.read() as reader:
        await _duplicate_guard(InboxRepository(reader, caller.tenant), body.email)
    smtp_port, smtp_security = _smtp_defaults(body.smtp_port, body.smtp_security)
    imap_port, imap_security = _imap_defaults(body.imap_port, body.imap_security)
    inbox = repo.new(
        **common,
        status=InboxStatus.connected.value,
        smtp_host=body.smtp_host,
        smtp_port=smtp_port,
        smtp_security=smtp_security,
        smtp_username=body.smtp_username or body.email,
        imap_host=body.imap_host,
        imap_port=imap_port,
        imap_security=imap_security,
        imap_username=body.imap_username or body.email,
    )
    smtp_password, imap_password = body.smtp_password, body.imap_password
    assert smtp_password is not None and imap_password is not None  # required above
    await _verify(session, connection.password_endpoints(inbox, smtp_password, imap_password), caller, ctx)
    box = crypto.secret_box(ctx.settings)
    now = utcnow()
    inbox.smtp_password_encrypted = box.encrypt(smtp_password)
    inbox.imap_password_encrypted = box.encrypt(imap_password)
    inbox.last_checked_at = now
    inbox.status_changed_at = now
    session.add(inbox)
    await _flush_or_conflict(session, body.email)
    return inbox


async def _create_oauth_inbox(
    session: AsyncSession,
    repo: InboxRepository,
    body: InboxCreate,
    common: dict[str, Any],
    ctx: OutboundContext,
) -> Inbox:
    for name in SERVER_FIELDS:
        if getattr(body, name) is not None:
            raise InvalidField(
                f"{name} is not used for {body.provider} inboxes: they connect with OAuth through the "
                "setup_url",
                name,
            )
    provider = oauth_provider(ctx.settings, body.provider)
    if provider is None:
        env = f"IMAIL_{body.provider.upper()}"
        raise InvalidField(
            f"{provider_label(body.provider)} inboxes are not enabled on this server ({env}_CLIENT_ID and "
            f"{env}_CLIENT_SECRET are unset); connect it as a custom SMTP/IMAP inbox instead",
            "provider",
        )
    await _duplicate_guard(repo, body.email)
    inbox = repo.new(
        **common,
        status=InboxStatus.setup_pending.value,
        smtp_host=provider.smtp.host,
        smtp_port=provider.smtp.port,
        smtp_security=provider.smtp.security,
        smtp_username=body.email,
        imap_host=provider.imap.host,
        imap_port=provider.imap.port,
        imap_security=provider.imap.security,
        imap_username=body.email,
        oauth_state_nonce=oauth.new_nonce(),
        status_changed_at=utcnow(),
    )
    session.add(inbox)
    await _flush_or_conflict(session, body.email)
    return inbox


def provider_label(name: str) -> str:
    return {"google": "Google", "microsoft": "Microsoft"}.get(name, name)


# --- update -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CheckedServers:
    """New server settings whose logins worked, and the stored login they were checked against."""

    candidate: Inbox
    smtp_password: str
    imap_password: str
    fingerprint: tuple


async def _check_server_changes(
    session: AsyncSession, caller: Caller, seen: Inbox, server_changes: dict[str, Any], ctx: OutboundContext
) -> _CheckedServers:
    """Log in with the stored inbox's settings as changed (no database connection is held meanwhile)."""
    if is_oauth(seen.provider):
        name = next(iter(server_changes))
        raise InvalidField(
            f"{name} cannot be set on a {seen.provider} inbox: it logs in with OAuth (POST "
            f"/v1/inboxes/{seen.id}/reconnect)",
            name,
        )
    box = crypto.secret_box(ctx.settings)
    candidate = Inbox(
        id=seen.id,
        email=seen.email,
        provider=seen.provider,
        **{
            f"{side}_{part}": server_changes.get(f"{side}_{part}", getattr(seen, f"{side}_{part}"))
            for side in ("smtp", "imap")
            for part in ("host", "port", "security")
        },
        smtp_username=server_changes.get("smtp_username") or seen.smtp_username or seen.email,
        imap_username=server_changes.get("imap_username") or seen.imap_username or seen.email,
    )
    try:
        smtp_password = server_changes.get("smtp_password") or box.decrypt(seen.smtp_password_encrypted or "")
        imap_password = server_changes.get("imap_password") or box.decrypt(seen.imap_password_encrypted or "")
    except crypto.InvalidToken:
        raise InvalidField(
            "the stored passwords can no longer be decrypted (IMAIL_SECRET_KEY changed without "
            "IMAIL_SECRET_KEYS_OLD); send smtp_password and imap_password again",
            "smtp_password",
        ) from None
    await _verify(
        session, connection.password_endpoints(candidate, smtp_password, imap_password), caller, ctx
    )
    return _CheckedServers(candidate, smtp_password, imap_password, monitor.login_fingerprint(seen))


async def update_inbox(
    session: AsyncSession, caller: Caller, inbox_id: str, body: InboxUpdate, ctx: OutboundContext
) -> Inbox:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    for name in NOT_NULL_ON_UPDATE:
        if name in changes and changes[name] is None:
            raise InvalidField(f"{name} cannot be null; leave it out to keep the current value", name)
    _check_daily_limit(caller, changes.get("daily_limit"))
    domain = None
    if "tracking_domain" in changes:  # DNS asked before any transaction opens
        domain = await tracking_domains.prepare(ctx.settings, changes["tracking_domain"])
    server_changes = {k: v for k, v in changes.items() if k in SERVER_FIELDS}
    checked: _CheckedServers | None = None
    if server_changes:
        async with ctx.database.read() as reader:
            seen = await get_inbox(reader, caller.tenant, inbox_id)
        checked = await _check_server_changes(session, caller, seen, server_changes, ctx)

    inbox = await get_inbox(session, caller.tenant, inbox_id)
    reconnected = False
    if checked is not None:
        if monitor.login_fingerprint(inbox) != checked.fingerprint:
            raise Conflict(
                f"Inbox {inbox.id}'s server settings changed while the new ones were being checked; send "
                "the change "
                "again"
            )
        for side in ("smtp", "imap"):
            for part in ("host", "port", "security", "username"):
                setattr(inbox, f"{side}_{part}", getattr(checked.candidate, f"{side}_{part}"))
        box = crypto.secret_box(ctx.settings)
        if "smtp_password" in server_changes:
            inbox.smtp_password_encrypted = box.encrypt(checked.smtp_password)
        if "imap_password" in server_changes:
            inbox.imap_password_encrypted = box.encrypt(checked.imap_password)
        monitor.forget_read_failures(inbox)  # new settings: the reader starts counting again
        reconnected = True

    for name in ("name", "daily_limit", "sending_gap_minutes", "sent_folder_mode"):
        if name in changes:
            setattr(inbox, name, changes[name])
    if "signature" in changes:
        inbox.signature = changes["signature"] or ""
    if "warmup" in changes:
        await warmup.configure(session, caller.tenant, inbox, _warmup_changes(body.warmup), utcnow())
    if domain is not None:
        await tracking_domains.set_domain(session, inbox, caller.workspace_id, domain, utcnow())
    await session.flush()
    if reconnected:
        # Both logins just worked: a disconnected inbox is connected again (one inbox.reconnected).
        await monitor.mark_ok(session, inbox, utcnow())
        await session.refresh(inbox)
    return inbox


async def verify_tracking_domain(
    session: AsyncSession, caller: Caller, inbox_id: str, ctx: OutboundContext
) -> Inbox:
    """Ask DNS again now whether the inbox's tracking domain points to this server."""
    inbox = await get_inbox(session, caller.tenant, inbox_id)
    if not inbox.tracking_domain:
        raise Conflict(f"Inbox {inbox.id} has no tracking_domain to verify; set one with PATCH first")
    await tracking_domains.verify(ctx.settings, inbox, utcnow())
    await session.flush()
    return inbox


# --- delete -----------------------------------------------------------------------------------------------


async def inbox_in_exclusive_use(session: AsyncSession, tenant: Tenant, inbox_id: str) -> str | None:
    """The id of an active campaign that sends only from this inbox (no other connected inbox), or None."""
    return await InboxRepository(session, tenant).exclusive_campaign(inbox_id)


async def delete_inbox(session: AsyncSession, caller: Caller, inbox_id: str, force: bool) -> None:
    inbox = await get_inbox(session, caller.tenant, inbox_id)
    if not force:
        campaign_id = await inbox_in_exclusive_use(session, caller.tenant, inbox.id)
        if campaign_id is not None:
            raise Conflict(
                f"Active campaign {campaign_id} sends only from this inbox; pause it, give it another "
                "connected "
                "inbox, or delete with ?force=true (the campaign then has no inbox to send from)",
            )
    await InboxRepository(session, caller.tenant).remove(inbox)
    oauth.ACCESS_TOKENS.forget(inbox.id)


# --- reconnect and warmup ---------------------------------------------------------------------------------


async def reconnect_inbox(
    session: AsyncSession, caller: Caller, inbox_id: str, ctx: OutboundContext
) -> Inbox:
    """Log in again now and store the new status (an OAuth inbox still waiting for consent stays
    setup_pending). The IMAP reader's failures are forgotten: a good login connects an inbox its failed reads
    disconnected. A check made with settings changed meanwhile decides nothing (monitor.apply_outcome)."""
    async with ctx.database.read() as reader:
        seen = await get_inbox(reader, caller.tenant, inbox_id)
    if seen.status != InboxStatus.setup_pending.value:
        now = utcnow()
        if not caller.livemode:
            outcome = monitor.CheckOutcome()
        else:
            async with outbound_slot(ctx, session, caller.workspace_id):
                outcome = await monitor.probe(seen, ctx.settings, ctx.http, now)
        await monitor.apply_outcome(session, seen, outcome, ctx.settings, now, requested=True)
    inbox = await get_inbox(session, caller.tenant, inbox_id)
    await session.refresh(inbox)
    return inbox


def _warmup_changes(body: WarmupSettings | None) -> dict[str, Any]:
    if body is None:
        return {}
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    for name, value in changes.items():
        if value is None:
            raise InvalidField(
                f"warmup.{name} cannot be null; leave it out to keep the current value", f"warmup.{name}"
            )
    return changes


async def start_warmup(
    session: AsyncSession, caller: Caller, inbox_id: str, body: WarmupSettings | None = None
) -> Inbox:
    """Join the warmup pool (or change the ramp of an inbox already in it). The ramp counts from the first
    start; resuming after a pause carries on where the ramp is."""
    inbox = await get_inbox(session, caller.tenant, inbox_id)
    changes = _warmup_changes(body)
    if inbox.warmup_status == WarmupStatus.active.value:
        if changes:
            await warmup.configure(session, caller.tenant, inbox, changes, utcnow())
        return inbox
    if inbox.status != InboxStatus.connected.value:
        raise Conflict(
            f"Warmup needs a connected inbox; this one is {inbox.status} (POST "
            f"/v1/inboxes/{inbox.id}/reconnect)"
        )
    now = utcnow()
    if inbox.warmup_status == WarmupStatus.off.value or inbox.warmup_started_at is None:
        inbox.warmup_started_at = now
    inbox.warmup_status = WarmupStatus.active.value
    await warmup.start(session, caller.tenant, inbox, changes, now)
    await session.flush()
    return inbox


async def pause_warmup(session: AsyncSession, caller: Caller, inbox_id: str) -> Inbox:
    inbox = await get_inbox(session, caller.tenant, inbox_id)
    if inbox.warmup_status == WarmupStatus.off.value:
        raise Conflict("Warmup has not been started on this inbox; POST …/warmup/start first")
    if inbox.warmup_status == WarmupStatus.active.value:
        inbox.warmup_status = WarmupStatus.paused.value
        await warmup.pause(session, caller.tenant, inbox, "paused through the API", utcnow())
    await session.flush()
    return inbox


async def pause_sending(session: AsyncSession, caller: Caller, inbox_id: str) -> Inbox:
    """Pause the inbox's campaign sending by hand (idempotent: a paused inbox stays as it is, no second
    event)."""
    inbox = await get_inbox(session, caller.tenant, inbox_id)
    await pausing.pause_sending(
        session, caller.tenant, inbox.id, "manual", utcnow(), "paused through the API"
    )
    await session.flush()
    await session.refresh(inbox)
    return inbox


async def resume_sending(session: AsyncSession, caller: Caller, inbox_id: str) -> Inbox:
    """Resume campaign sending (idempotent); bounce protection judges only emails claimed from now on."""
    inbox = await get_inbox(session, caller.tenant, inbox_id)
    await pausing.resume_sending(session, caller.tenant, inbox, utcnow())
    await session.flush()
    await session.refresh(inbox)
    return inbox


# --- OAuth callback ---------------------------------------------------------------------------------------


async def complete_oauth(
    session: AsyncSession,
    ctx: OutboundContext,
    state: str | None,
    code: str | None,
    error: str | None,
    error_description: str | None,
) -> Inbox:
    """The provider sent the user back: exchange the code, log in with XOAUTH2 on both sides, store the
    token."""
    if not state:
        raise MissingField("state is required: open the inbox's setup_url to start the OAuth flow", "state")
    claims = oauth.read_state(ctx.settings, state)
    if claims is None:
        raise InvalidField("state is invalid or expired; GET the inbox again for a fresh setup_url", "state")
    async with ctx.database.read() as reader:
        seen = await _oauth_inbox(InboxRepository(reader, claims.tenant), claims)
    label = provider_label(seen.provider)
    if error:
        words = f"{error}: {error_description}" if error_description else error
        raise InvalidField(
            f"{label} did not grant access ({words}); open the setup_url again to retry", "error"
        )
    if not code:
        raise MissingField("code is required (the provider's authorization code)", "code")
    provider = oauth_provider(ctx.settings, seen.provider)
    if provider is None:
        raise InvalidField(f"{label} inboxes are no longer enabled on this server", "provider")

    # The servers come from settings again, so a re-consent also picks up changed provider settings.
    servers = {
        "smtp_host": provider.smtp.host,
        "smtp_port": provider.smtp.port,
        "smtp_security": provider.smtp.security,
        "imap_host": provider.imap.host,
        "imap_port": provider.imap.port,
        "imap_security": provider.imap.security,
    }
    async with outbound_slot(ctx, session, claims.tenant.workspace_id):
        try:
            tokens = await oauth.exchange_code(
                ctx.http, provider, ctx.settings, code, ctx.settings.mail_timeout
            )
        except oauth.OAuthError as exc:
            raise InvalidField(exc.detail, "code") from None
        endpoints = connection.oauth_endpoints(Inbox(email=seen.email, **servers), tokens.access_token)
        failures = await connection.refused_hosts(
            endpoints, ctx.settings, resolve_names=claims.tenant.livemode
        )
        if not failures and claims.tenant.livemode:
            failures = await connection.check_endpoints(endpoints, ctx.settings)
    if failures:
        problem = _login_error(failures)
        problem.field = failures[0].side  # no password to blame: "smtp" or "imap"
        raise problem  # nothing of this attempt is kept

    inbox = await _oauth_inbox(
        InboxRepository(session, claims.tenant), claims
    )  # a parallel callback may have won
    for name, value in servers.items():
        setattr(inbox, name, value)
    now = utcnow()
    ciphertext = crypto.secret_box(ctx.settings).encrypt(tokens.refresh_token or "")
    inbox.oauth_refresh_token_encrypted = ciphertext
    inbox.oauth_state_nonce = oauth.new_nonce()  # this link is spent; later setup_urls use the new nonce
    inbox.last_checked_at = now
    inbox.last_error = None
    inbox.last_error_side = None
    monitor.forget_read_failures(inbox)
    backoff.forget_token_backoff(inbox)
    was = inbox.status
    if was == InboxStatus.setup_pending.value:
        inbox.status = InboxStatus.connected.value
        inbox.status_changed_at = now
    await session.flush()
    if was == InboxStatus.disconnected.value:
        await monitor.mark_ok(session, inbox, now)
        await session.refresh(inbox)
    oauth.ACCESS_TOKENS.put(inbox.id, ciphertext, tokens.access_token, tokens.expires_in)
    return inbox


async def _oauth_inbox(repo: InboxRepository, claims: oauth.StateClaims) -> Inbox:
    """The inbox a setup link was made for, while that link is unspent."""
    inbox = await repo.get(claims.inbox_id)
    if inbox is None or not is_oauth(inbox.provider):
        raise NotFound("The inbox this setup link was made for no longer exists")
    if inbox.oauth_state_nonce != claims.nonce:
        raise InvalidField(
            "This setup link was already used; GET the inbox again for a fresh setup_url", "state"
        )
    return inbox


# --- operators --------------------------------------------------------------------------------------------


@dataclass
class RotationReport:
    inboxes: int = 0
    rotated: int = 0  # secrets re-encrypted under the current key
    current: int = 0  # secrets already under the current key
    unreadable: list[str] = field(default_factory=list)  # inbox ids whose secrets no configured key opens


async def rotate_secrets(database: Any, settings: Settings, batch: int = 200) -> RotationReport:
    """Re-encrypt every stored inbox secret under the current IMAIL_SECRET_KEY (one transaction per batch)."""
    box = crypto.secret_box(settings)
    report = RotationReport()
    for column in ("smtp_password_encrypted", "imap_password_encrypted", "oauth_refresh_token_encrypted"):
        done = await crypto.rotate_column(database, InboxMaintenance, column, box, batch)
        report.inboxes = done.rows
        report.rotated += done.rotated
        report.current += done.current
        report.unreadable += [inbox_id for inbox_id in done.unreadable if inbox_id not in report.unreadable]
    return report
