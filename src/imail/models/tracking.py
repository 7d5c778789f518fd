"""When each tracking link last produced an event, so that a burst of hits is one event (see tracking.service)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base

OPEN_PIXEL = -1  # `link` of an email's open pixel; its links are 0, 1, … as in Message.links


class TrackingWindow(Base):
    """One email's pixel or one of its links: when the event of its current window was recorded."""

    __tablename__ = "tracking_windows"

    message_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    link: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event_at: Mapped[datetime] = mapped_column()
