"""Creating workspaces (with a live and a test key each) — operator actions, driven from the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import issue_key
from imail.errors import InvalidField, NotFound
from imail.models import Tier, Workspace
from imail.workspaces.repository import WorkspaceRepository


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
    session: AsyncSession, name: str, tier: str, rate_limit_per_minute: int | None = None,
    rate_limit_burst: int | None = None, contact_email: str | None = None,
) -> CreatedWorkspace:
    _check(name, tier)
    workspace = await WorkspaceRepository(session).add(
        Workspace(name=name.strip(), tier=tier, rate_limit_per_minute=rate_limit_per_minute,
                  rate_limit_burst=rate_limit_burst, contact_email=_contact(contact_email))
    )
    live = await issue_key(session, workspace.id, livemode=True, name="default live key")
    test = await issue_key(session, workspace.id, livemode=False, name="default test key")
    return CreatedWorkspace(workspace, live.secret, test.secret)


async def demo_workspace(session: AsyncSession, name: str = "Demo") -> CreatedWorkspace:
    """The `make run` workspace: created once, then given fresh keys on every run (keys are shown only once)."""
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
