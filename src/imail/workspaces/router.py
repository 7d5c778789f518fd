"""`/v1/workspace`: the caller's own workspace, and the email footer its campaigns may include."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.idempotency.deps import Idempotent
from imail.workspaces import service
from imail.workspaces.schemas import WorkspaceUpdate, WorkspaceView

router = APIRouter(
    prefix="/workspace", tags=["Workspace"], dependencies=[Depends(require_scope("workspace")), Idempotent]
)


@router.get("", response_model=WorkspaceView)
async def get_workspace(caller: CallerDep, session: SessionDep):
    """The caller's workspace: name, tier and the footer settings."""
    return await service.get_workspace(session, caller.workspace_id)


@router.patch("", response_model=WorkspaceView)
async def update_workspace(body: WorkspaceUpdate, caller: CallerDep, session: SessionDep):
    """Set the footer's postal address and opt-out line (shared by both ledgers, so a live key is needed)."""
    return await service.update_footer(session, caller, body)
