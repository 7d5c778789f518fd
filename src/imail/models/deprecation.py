"""Who still uses what a snapshot deprecated (the deprecation warnings are built from it), and which warnings
went out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base

TARGET_LENGTH = 300


class DeprecationUsage(Base):
    """One key's use of one deprecated thing: how often, first and last."""

    __tablename__ = "deprecation_usage"

    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    api_key_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(TARGET_LENGTH), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_used_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime] = mapped_column()


class DeprecationNotice(Base):
    """The last warning a workspace got about one deprecated thing (one a month at most)."""

    __tablename__ = "deprecation_notices"

    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(TARGET_LENGTH), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column()
    emailed_to: Mapped[str | None] = mapped_column(String(320))
