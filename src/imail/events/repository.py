from __future__ import annotations

from imail.kit.repository import TenantRepository
from imail.models import Event


class EventRepository(TenantRepository[Event]):
    model = Event
