"""What teaches the reply classifier per workspace: label corrections (PATCH /v1/replies/{id}) and the model a
workspace trained from them (`imail replies train --workspace …`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from imail.kit.clock import utcnow
from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin


class ReplyLabelCorrection(IdMixin, TenantMixin, Base):
    """One label correction, kept with the text it labelled so that it outlives the reply (a deleted lead
    takes its replies with it; the lesson stays)."""

    __tablename__ = "reply_label_corrections"
    id_prefix = "rlc"
    __tenant_table_args__ = (Index(None, "workspace_id", "created_at"),)

    reply_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("replies.id", ondelete="SET NULL")
    )
    text: Mapped[str] = mapped_column(Text)  # the reply's new text, as the classifier saw it
    label: Mapped[str] = mapped_column(String(24))
    previous_label: Mapped[str | None] = mapped_column(String(24))
    previous_source: Mapped[str | None] = mapped_column(String(16))  # what had decided the label corrected
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplyModel(Base):
    """A workspace's own reply model (both ledgers): the shipped corpus plus its corrections. At most one."""

    __tablename__ = "reply_models"

    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[bytes] = mapped_column(LargeBinary)  # imail.replies.model.LogisticModel.to_bytes()
    corrections: Mapped[int] = mapped_column(Integer)  # corrections it learned from
    examples: Mapped[int] = mapped_column(Integer)  # all training examples (corpus + corrections)
    trained_at: Mapped[datetime] = mapped_column()
