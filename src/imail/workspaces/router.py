"""`/v1/workspace`: the caller's own workspace, the email footer its campaigns may include and its tracking
domain."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.idempotency.deps import Idempotent
from imail.kit.clock import utcnow
from imail.workspaces import service
from imail.workspaces.schemas import WorkspaceUpdate, WorkspaceView

router = APIRouter(
    prefix="/workspace", tags=["Workspace"], dependencies=[Depends(require_scope("workspace")), Idempotent]
)


@router.get("", response_model=WorkspaceView)
async def get_workspace(caller: CallerDep, session: SessionDep):
    """The caller's workspace: name, tier, the footer settings and the tracking domain with its DNS status."""
    return await service.get_workspace(session, caller.workspace_id)


@router.patch("", response_model=WorkspaceView)
async def update_workspace(body: WorkspaceUpdate, caller: CallerDep, session: SessionDep, request: Request):
    """Set the footer's postal address and opt-out line, and the tracking domain (shared by both ledgers, so a
    live key is needed). A new `tracking_domain` is checked in DNS before the answer: `verified` when it is a
    CNAME to this server, else `failed` or `pending` with `tracking_domain_reason`; 409 when another workspace
    uses it."""
    workspace = await service.update_workspace(session, request.app.state.settings, caller, body, utcnow())
    if "tracking_domain" in body.model_fields_set:
        request.app.state.tracking_hosts.clear()  # the old host and the new one: who owns them changed
    return workspace


@router.post(
    "/tracking-domain/verify",
    response_model=WorkspaceView,
    summary="Verify the tracking domain now",
)
async def verify_workspace_tracking_domain(caller: CallerDep, session: SessionDep, request: Request):
    """Ask DNS again now whether the workspace's tracking domain points to this server (it is also re-checked
    periodically); the answer carries the new status and reason. DNS being unreachable leaves the status as it
    was."""
    return await service.verify_tracking_domain(session, request.app.state.settings, caller, utcnow())
