from __future__ import annotations

from sqlalchemy import select

from imail.kit.repository import Repository
from imail.models import Campaign, Lead, Message
from imail.models.sending import SequenceState


class TrackingRepository(Repository[Message]):
    """Public routes find their message by the id inside a signed token: one row, no listing."""

    model = Message

    async def message(self, message_id: str) -> Message | None:
        return await self.session.get(Message, message_id)

    async def lead_state_campaign(self, message: Message) -> tuple[Lead | None, SequenceState | None, Campaign | None]:
        lead = await self.session.get(Lead, message.lead_id)
        state = (await self.session.execute(select(SequenceState).where(SequenceState.lead_id == message.lead_id))).scalar_one_or_none()
        campaign = await self.session.get(Campaign, message.campaign_id)
        return lead, state, campaign
