from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select

from imail.kit.repository import Repository
from imail.models import WorkerHeartbeat


class HeartbeatRepository(Repository[WorkerHeartbeat]):
    model = WorkerHeartbeat

    async def beat(self, instance_id: str, hostname: str, pid: int, now: datetime) -> None:
        row = await self.session.get(WorkerHeartbeat, instance_id)
        if row is None:
            self.session.add(
                WorkerHeartbeat(id=instance_id, hostname=hostname, pid=pid, started_at=now, seen_at=now)
            )
        else:
            row.seen_at = now
        await self.session.flush()

    async def remove(self, instance_id: str) -> None:
        await self.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.id == instance_id))

    async def forget_before(self, cutoff: datetime) -> None:
        await self.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < cutoff))

    async def alive_since(self, cutoff: datetime) -> int:
        return (
            await self.session.execute(select(func.count()).where(WorkerHeartbeat.seen_at >= cutoff))
        ).scalar_one()
