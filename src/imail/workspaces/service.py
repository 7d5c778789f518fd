"""Creating workspaces (with a live and a test key each) — operator actions, driven from the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller, issue_key
from imail.config import Settings
from imail.errors import Conflict, Forbidden, InvalidField, NotFound
from imail.mail import templates
from imail.mail.footer import check_footer_text
from imail.models import Tier, Workspace
from imail.tracking_domains import service as tracking_domains
from imail.workspaces.repository import WorkspaceRepository
from imail.workspaces.schemas import WorkspaceUpdate


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Workspace
    live_key: str
    test_key: str


def _check(name: str, tier: str) -> None:
    if not name.strip() or len(name) > 120:
        raise InvalidField("name must be 1–120 characters", "name")
    if tier not in Tier.__members__:
        raise InvalidField(f"tier must be one of {', '.join(Tier.__members__)}", "tier")


def _contact(address: str | None) -> str | None:
    if address is None or not address.strip():
        return None
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidField(f"contact email: {exc}", "contact_email") from None


async def create_workspace(
    session: AsyncSession,
    name: str,
    tier: str,
    rate_limit_per_minute: int | None = None,
    rate_limit_burst: int | None = None,
    contact_email: str | None = None,
) -> CreatedWorkspace:
    _check(name, tier)
    workspace = await WorkspaceRepository(session).add(
        Workspace(
            name=name.strip(),
            tier=tier,
            rate_limit_per_minute=rate_limit_per_minute,
            rate_limit_burst=rate_limit_burst,
            contact_email=_contact(contact_email),
        )
    )
    live = await issue_key(session, workspace.id, livemode=True, name="default live key")
    test = await issue_key(session, workspace.id, livemode=False, name="default test key")
    return CreatedWorkspace(workspace, live.secret, test.secret)


async def demo_workspace(session: AsyncSession, name: str = "Demo") -> CreatedWorkspace:
    """The `make run` workspace: created once, then given fresh keys on every run (keys are shown only
    once)."""
    repo = WorkspaceRepository(session)
    workspace = await repo.by_name(name)
    if workspace is None:
        return await create_workspace(session, name, Tier.surge)
    live = await issue_key(session, workspace.id, livemode=True, name="make run live key")
    test = await issue_key(session, workspace.id, livemode=False, name="make run test key")
    return CreatedWorkspace(workspace, live.secret, test.secret)


async def set_contact(session: AsyncSession, workspace_id: str, contact_email: str | None) -> Workspace:
    """Where operator notices (deprecation warnings) go; None or empty clears it."""
    workspace = await WorkspaceRepository(session).get(workspace_id)
    if workspace is None:
        raise NotFound(f"No workspace {workspace_id}")
    workspace.contact_email = _contact(contact_email)
    return workspace


async def find_workspace(session: AsyncSession, workspace_id: str) -> Workspace | None:
    return await WorkspaceRepository(session).get(workspace_id)


async def get_workspace(session: AsyncSession, workspace_id: str) -> Workspace:
    workspace = await WorkspaceRepository(session).get(workspace_id)
    if workspace is None:
        raise NotFound(f"No workspace {workspace_id}")
    return workspace


def _postal_address(value: str | None) -> str | None:
    if value is None:
        return None
    lines = [line.strip() for line in value.replace("\r\n", "\n").split("\n") if line.strip()]
    return "\n".join(lines) or None


def _footer_text(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        check_footer_text(value.strip())
    except templates.TemplateError as exc:
        raise InvalidField(f"footer_text: {exc}", "footer_text") from None
    return value.strip()


async def update_workspace(
    session: AsyncSession, settings: Settings, caller: Caller, body: WorkspaceUpdate, now: datetime
) -> Workspace:
    """PATCH /v1/workspace: fields left out keep their value, null clears. A new tracking domain is checked in
    DNS before the answer (its status says how that went)."""
    if not caller.livemode:
        raise Forbidden("The workspace's settings apply to live emails too: change them with a live key")
    changes = body.model_dump(exclude_unset=True)
    domain = None
    if "tracking_domain" in changes:
        domain = await tracking_domains.prepare(settings, changes.pop("tracking_domain"))
    workspace = await set_footer(session, caller.workspace_id, **changes)
    if domain is not None:
        await tracking_domains.set_domain(session, workspace, workspace.id, domain, now)
        await session.flush()
    return workspace


async def verify_tracking_domain(
    session: AsyncSession, settings: Settings, caller: Caller, now: datetime
) -> Workspace:
    """POST /v1/workspace/tracking-domain/verify: ask DNS again now."""
    workspace = await get_workspace(session, caller.workspace_id)
    if not workspace.tracking_domain:
        raise Conflict("The workspace has no tracking_domain to verify; set one with PATCH /v1/workspace")
    await tracking_domains.verify(settings, workspace, now)
    await session.flush()
    return workspace


async def set_footer(session: AsyncSession, workspace_id: str, **changes: str | None) -> Workspace:
    """The footer's postal address and opt-out line (`postal_address`, `footer_text`; None or empty
    clears)."""
    workspace = await get_workspace(session, workspace_id)
    if "footer_text" in changes:
        workspace.footer_text = _footer_text(changes["footer_text"])
    if "postal_address" in changes:
        workspace.postal_address = _postal_address(changes["postal_address"])
    await session.flush()
    return workspace
