from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.pagination import PageParams
from imail.kit.repository import TenantRepository
from imail.kit.sql import rowcount
from imail.models import Message, Reply, ReplyLabelCorrection, ReplyModel
from imail.models.sending import SequenceState

EXPORT_COLUMNS = (
    "id",
    "direction",
    "campaign_id",
    "lead_id",
    "inbox_id",
    "from_email",
    "from_name",
    "to_emails",
    "subject",
    "reply_text",
    "label",
    "confidence",
    "label_source",
    "auto_reply",
    "out_of_office",
    "return_date",
    "status",
    "livemode",
    "received_at",
    "created_at",
)


class ReplyRepository(TenantRepository[Reply]):
    model = Reply

    async def list_page(
        self,
        params: PageParams,
        *,
        campaign_id: str | None,
        inbox_id: str | None,
        lead_id: str | None,
        label: str | None,
        auto_reply: bool | None,
        direction: str | None,
    ) -> list[Reply]:
        stmt = self._filtered(
            self.select(),
            campaign_id=campaign_id,
            inbox_id=inbox_id,
            lead_id=lead_id,
            label=label,
            auto_reply=auto_reply,
            direction=direction,
        )
        return await self.page(params, stmt)

    def _filtered(
        self,
        stmt: Any,
        *,
        campaign_id: str | None,
        inbox_id: str | None,
        lead_id: str | None,
        label: str | None,
        auto_reply: bool | None,
        direction: str | None,
    ) -> Any:
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
        return stmt

    async def export_batch(self, after_id: str | None, limit: int, **filters: Any) -> list[Any]:
        """A keyset page of matching replies, oldest first, as plain rows of EXPORT_COLUMNS."""
        table = Reply.__table__.c
        stmt = self._filtered(self.select(*(table[name] for name in EXPORT_COLUMNS)), **filters)
        if after_id is not None:
            stmt = stmt.where(Reply.id > after_id)
        return list((await self.session.execute(stmt.order_by(Reply.id).limit(limit))).all())

    async def of_lead(self, lead_id: str) -> list[Reply]:
        stmt = self.select().where(Reply.lead_id == lead_id).order_by(Reply.received_at, Reply.id)
        return list((await self.session.execute(stmt)).scalars())


class LeadThread(TenantRepository[Message]):
    """Our emails to one lead, and its sequence state (tenant-scoped)."""

    model = Message

    async def messages(self, lead_id: str) -> list[Message]:
        stmt = (
            self.select().where(Message.lead_id == lead_id).order_by(Message.step_index, Message.created_at)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def state(self, lead_id: str) -> SequenceState | None:
        stmt = select(SequenceState).where(
            self.pin(SequenceState),
            SequenceState.lead_id == lead_id,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()


class CorrectionRepository(TenantRepository[ReplyLabelCorrection]):
    model = ReplyLabelCorrection


class WorkspaceCorrections:
    """Every label correction of one workspace, both ledgers (what its own model learns from)."""

    def __init__(self, session: AsyncSession, workspace_id: str) -> None:
        self.session = session
        self.workspace_id = workspace_id

    async def latest(self) -> list[ReplyLabelCorrection]:
        """The corrections in force, oldest first: per reply only its newest (a reply relabelled twice teaches
        its last label once); corrections whose reply is gone are all kept."""
        stmt = (
            select(ReplyLabelCorrection)
            .where(ReplyLabelCorrection.workspace_id == self.workspace_id)
            .order_by(ReplyLabelCorrection.created_at, ReplyLabelCorrection.id)
        )
        newest: dict[str, ReplyLabelCorrection] = {}
        orphans: list[ReplyLabelCorrection] = []
        for row in (await self.session.execute(stmt)).scalars():
            if row.reply_id is None:
                orphans.append(row)
            else:
                newest.pop(row.reply_id, None)
                newest[row.reply_id] = row
        return sorted([*orphans, *newest.values()], key=lambda row: (row.created_at, row.id))


class ReplyModels:
    """Per-workspace reply models (not ledger-scoped: one model serves a workspace's live and test
    replies)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str) -> ReplyModel | None:
        return await self.session.get(ReplyModel, workspace_id)

    async def trained_at(self, workspace_id: str) -> datetime | None:
        stmt = select(ReplyModel.trained_at).where(ReplyModel.workspace_id == workspace_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def save(
        self, workspace_id: str, model: bytes, corrections: int, examples: int, trained_at: datetime
    ) -> ReplyModel:
        row = await self.get(workspace_id)
        if row is None:
            row = ReplyModel(workspace_id=workspace_id)
            self.session.add(row)
        row.model, row.corrections, row.examples, row.trained_at = model, corrections, examples, trained_at
        await self.session.flush()
        return row

    async def drop(self, workspace_id: str) -> bool:
        result = await self.session.execute(delete(ReplyModel).where(ReplyModel.workspace_id == workspace_id))
        return bool(rowcount(result))
