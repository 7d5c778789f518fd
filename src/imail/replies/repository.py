from __future__ import annotations

from sqlalchemy import select

from imail.kit.pagination import PageParams
from imail.kit.repository import TenantRepository
from imail.models import Message, Reply
from imail.models.sending import SequenceState


class ReplyRepository(TenantRepository[Reply]):
    model = Reply

    async def list_page(self, params: PageParams, *, campaign_id: str | None, inbox_id: str | None,
                        lead_id: str | None, label: str | None, auto_reply: bool | None,
                        direction: str | None) -> list[Reply]:
        stmt = self.select()
        if campaign_id is not None:
            stmt = stmt.where(Reply.campaign_id == campaign_id)
        if inbox_id is not None:
            stmt = stmt.where(Reply.inbox_id == inbox_id)
        if lead_id is not None:
            stmt = stmt.where(Reply.lead_id == lead_id)
        if label is not None:
            stmt = stmt.where(Reply.label == label)
        if auto_reply is not None:
            stmt = stmt.where(Reply.auto_reply.is_(auto_reply))
        if direction is not None:
            stmt = stmt.where(Reply.direction == direction)
        return await self.page(params, stmt)

    async def of_lead(self, lead_id: str) -> list[Reply]:
        stmt = self.select().where(Reply.lead_id == lead_id).order_by(Reply.received_at, Reply.id)
        return list((await self.session.execute(stmt)).scalars())


class LeadThread(TenantRepository[Message]):
    """Our emails to one lead, and its sequence state (tenant-scoped)."""

    model = Message

    async def messages(self, lead_id: str) -> list[Message]:
        stmt = self.select().where(Message.lead_id == lead_id).order_by(Message.step_index, Message.created_at)
        return list((await self.session.execute(stmt)).scalars())

    async def state(self, lead_id: str) -> SequenceState | None:
        stmt = select(SequenceState).where(
            SequenceState.workspace_id == self.tenant.workspace_id, SequenceState.livemode == self.tenant.livemode,
            SequenceState.lead_id == lead_id,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
