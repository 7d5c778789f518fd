"""When each tracking link last produced an event, so that a burst of hits is one event (see
tracking.service)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

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


class TrackingDomainStatus(StrEnum):
    pending = "pending"  # set, not yet confirmed in DNS (or DNS could not be asked): not used
    verified = "verified"  # points to this server: its owner's links, pixel and unsubscribe URLs use it
    failed = "failed"  # DNS answered, and not with this server: not used until a re-check passes


class TrackingDomainColumns:
    """A custom tracking domain, on a workspace and (overriding it) on an inbox; see
    imail.tracking_domains."""

    tracking_domain: Mapped[str | None] = mapped_column(String(253), index=True)
    tracking_domain_status: Mapped[str | None] = mapped_column(String(16))
    tracking_domain_checked_at: Mapped[datetime | None] = mapped_column()
    tracking_domain_reason: Mapped[str | None] = mapped_column(String(500))
