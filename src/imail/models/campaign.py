"""Campaigns: a multi-step sequence sent from one or more inboxes, and the campaign ↔ inbox association."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class CampaignStatus(StrEnum):
    draft = "draft"  # created, never started
    active = "active"  # sending (started by /resume)
    paused = "paused"  # stopped by /pause; /resume starts it again
    archived = "archived"  # DELETE: sending stops for good; still readable


class Campaign(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "campaigns"
    id_prefix = "cmp"
    # The sending engine looks for active campaigns across every workspace.
    __tenant_table_args__ = (Index(None, "status"),)

    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.draft.value)
    # Normalized step dicts (see imail.campaigns.schemas.StepIn): subject, body, delay, variants, branches.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    daily_limit: Mapped[int] = mapped_column(Integer)
    # {"timezone": "lead" | IANA name, "days": ["mon", …], "start": "09:00", "end": "17:00"}
    send_window: Mapped[dict[str, Any]] = mapped_column(JSONType)
    track_opens: Mapped[bool] = mapped_column(Boolean, default=True)
    track_clicks: Mapped[bool] = mapped_column(Boolean, default=True)
    stop_on_reply: Mapped[bool] = mapped_column(Boolean, default=True)
    # One text/plain part: no HTML, no open pixel, links as plain URLs (see imail.sending.compose).
    text_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Append the workspace's footer (postal address and an opt-out line, as CAN-SPAM asks) to every email.
    include_footer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Names of the lead custom_variables the steps may use without a fallback.
    custom_variables: Mapped[list[str]] = mapped_column(JSONType)
    # Leads whose last verification found them invalid ("invalid"), or invalid or risky ("risky"), are not
    # emailed: their sequence stops (see imail.sending.service). "none": verification results are not looked
    # at.
    skip_verification: Mapped[str] = mapped_column(String(16), default="none", server_default="none")


class CampaignInbox(Base):
    """Which inboxes a campaign sends from, in order. Both sides are checked to be one tenant's on write;
    reads always start from a tenant-scoped campaign."""

    __tablename__ = "campaign_inboxes"

    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    inbox_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)
