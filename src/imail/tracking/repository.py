from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from imail.kit.repository import Repository
from imail.kit.sql import upsert_insert
from imail.models import Campaign, Lead, Message
from imail.models.sending import SequenceState
from imail.models.tracking import TrackingWindow


class TrackingRepository(Repository[Message]):
    """Public routes find their message by the id inside a signed token: one row, no listing."""

    model = Message

    async def message(self, message_id: str) -> Message | None:
        return await self.session.get(Message, message_id)

    async def lead_state_campaign(
        self, message: Message
    ) -> tuple[Lead | None, SequenceState | None, Campaign | None]:
        lead = await self.session.get(Lead, message.lead_id)
        state = (
            await self.session.execute(select(SequenceState).where(SequenceState.lead_id == message.lead_id))
        ).scalar_one_or_none()
        campaign = await self.session.get(Campaign, message.campaign_id)
        return lead, state, campaign

    async def open_window(self, message_id: str, link: int, now: datetime, since: datetime) -> bool:
        """Whether this hit of one link (or the pixel) opens a new window, its event last recorded before
        `since` (or never); if so `now` becomes the window's start. One atomic upsert: of concurrent hits, one
        wins."""
        insert = upsert_insert(self.session)
        stmt = insert(TrackingWindow).values(message_id=message_id, link=link, event_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["message_id", "link"],
            set_={"event_at": stmt.excluded.event_at},
            where=TrackingWindow.event_at < since,
        ).returning(TrackingWindow.link)
        return (await self.session.execute(stmt)).first() is not None
