from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import Base, IdMixin, TimestampMixin
from imail.models.tracking import TrackingDomainColumns


class Tier(StrEnum):
    starter = "starter"
    surge = "surge"
    velocity = "velocity"
    apex = "apex"


class Workspace(IdMixin, TimestampMixin, TrackingDomainColumns, Base):
    __tablename__ = "workspaces"
    id_prefix = "ws"

    name: Mapped[str] = mapped_column(String(120))
    tier: Mapped[str] = mapped_column(String(16))
    # Apex limits are negotiated per workspace; other tiers leave these empty and use the tier's figures.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    rate_limit_burst: Mapped[int | None] = mapped_column(Integer)
    # Where operator notices go (deprecation warnings): the workspace's technical contact.
    contact_email: Mapped[str | None] = mapped_column(String(320))
    # The footer campaigns with include_footer add to every email: the sender's postal address (CAN-SPAM) and
    # the opt-out line (a template that may use {{unsubscribe_url}}; empty: the default line).
    postal_address: Mapped[str | None] = mapped_column(String(500))
    footer_text: Mapped[str | None] = mapped_column(String(1000))
