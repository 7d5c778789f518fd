"""Every ORM model, imported here so Alembic and the drift test see the whole schema."""

from imail.models.api_key import ApiKey
from imail.models.base import Base
from imail.models.event import Event
from imail.models.idempotency import IdempotencyRecord
from imail.models.worker_heartbeat import WorkerHeartbeat
from imail.models.workspace import Tier, Workspace

__all__ = ["ApiKey", "Base", "Event", "IdempotencyRecord", "Tier", "WorkerHeartbeat", "Workspace"]
