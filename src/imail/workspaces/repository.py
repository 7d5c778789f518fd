from __future__ import annotations

from sqlalchemy import select

from imail.kit.repository import Repository
from imail.models import Workspace


class WorkspaceRepository(Repository[Workspace]):
    model = Workspace

    async def get(self, workspace_id: str) -> Workspace | None:
        return await self.session.get(Workspace, workspace_id)

    async def by_name(self, name: str) -> Workspace | None:
        stmt = select(Workspace).where(Workspace.name == name).order_by(Workspace.id).limit(1)
        return (await self.session.execute(stmt)).scalar_one_or_none()
