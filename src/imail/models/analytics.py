"""Analytics rollups: daily counters maintained in the same transaction as each event
(imail.analytics.rollups).

Key columns use '' / 0 for "none" (a NULL would make every row distinct under the unique key)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, TenantMixin

COUNTERS = (
    "sent",
    "delivered",
    "opened",
    "opened_unique",
    "opened_machine",
    "clicked",
    "clicked_unique",
    "clicked_machine",
    "replied",
    "bounced_hard",
    "bounced_soft",
    "auto_replied",
    "unsubscribed",
    "interested",
    "meeting_booked",
)


class AnalyticsDaily(TenantMixin, Base):
    """Raw counts per (workspace, ledger, campaign, day UTC, step, variant, inbox)."""

    __tablename__ = "analytics_daily"
    __tenant_key__ = "day"
    __tenant_table_args__ = (
        PrimaryKeyConstraint("workspace_id", "livemode", "campaign_id", "day", "step", "variant", "inbox_id"),
        Index("ix_analytics_daily_inbox_day", "workspace_id", "livemode", "inbox_id", "day"),
    )

    campaign_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    day: Mapped[date] = mapped_column(Date)
    step: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(32))
    inbox_id: Mapped[str] = mapped_column(String(ID_LENGTH))

    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    opened_unique: Mapped[int] = mapped_column(Integer, default=0)
    opened_machine: Mapped[int] = mapped_column(Integer, default=0)
    clicked: Mapped[int] = mapped_column(Integer, default=0)
    clicked_unique: Mapped[int] = mapped_column(Integer, default=0)
    clicked_machine: Mapped[int] = mapped_column(Integer, default=0)
    replied: Mapped[int] = mapped_column(Integer, default=0)
    bounced_hard: Mapped[int] = mapped_column(Integer, default=0)
    bounced_soft: Mapped[int] = mapped_column(Integer, default=0)
    auto_replied: Mapped[int] = mapped_column(Integer, default=0)
    unsubscribed: Mapped[int] = mapped_column(Integer, default=0)
    interested: Mapped[int] = mapped_column(Integer, default=0)
    meeting_booked: Mapped[int] = mapped_column(Integer, default=0)


class AnalyticsCampaignDaily(TenantMixin, Base):
    """The same counts without the inbox: per (workspace, ledger, campaign, day UTC, step, variant). What the
    campaign, workspace and funnel reads sum (an inbox multiplies the rows; only the inbox report needs
    it)."""

    __tablename__ = "analytics_campaign_daily"
    __tenant_key__ = "day"
    __tenant_table_args__ = (
        PrimaryKeyConstraint("workspace_id", "livemode", "campaign_id", "day", "step", "variant"),
        Index(
            "ix_analytics_campaign_daily_day", "day", "livemode"
        ),  # platform-wide figures (/v1/metrics/public)
    )

    campaign_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    day: Mapped[date] = mapped_column(Date)
    step: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(32))

    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    opened_unique: Mapped[int] = mapped_column(Integer, default=0)
    opened_machine: Mapped[int] = mapped_column(Integer, default=0)
    clicked: Mapped[int] = mapped_column(Integer, default=0)
    clicked_unique: Mapped[int] = mapped_column(Integer, default=0)
    clicked_machine: Mapped[int] = mapped_column(Integer, default=0)
    replied: Mapped[int] = mapped_column(Integer, default=0)
    bounced_hard: Mapped[int] = mapped_column(Integer, default=0)
    bounced_soft: Mapped[int] = mapped_column(Integer, default=0)
    auto_replied: Mapped[int] = mapped_column(Integer, default=0)
    unsubscribed: Mapped[int] = mapped_column(Integer, default=0)
    interested: Mapped[int] = mapped_column(Integer, default=0)
    meeting_booked: Mapped[int] = mapped_column(Integer, default=0)


class AnalyticsRef(TenantMixin, Base):
    """What the rollups remember per sent email / reply: the key its later events count under, whether its
    first human open / click has been counted, and a reply's current label (so a relabel moves the count)."""

    __tablename__ = "analytics_refs"
    __tenant_key__ = "ref_id"
    __tenant_table_args__ = (PrimaryKeyConstraint("workspace_id", "livemode", "ref_id"),)

    ref_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    campaign_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    step: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(32))
    inbox_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    day: Mapped[date | None] = mapped_column(Date)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    clicked: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str | None] = mapped_column(String(32))
