"""Leads: the recipients of one campaign. An address is unique per campaign."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin, TimestampMixin


class LeadStatus(StrEnum):
    active = "active"  # in the sequence; the sending engine may email it
    paused = "paused"  # held by the user (PATCH status)
    completed = "completed"  # every step sent
    replied = "replied"
    bounced = "bounced"
    unsubscribed = "unsubscribed"
    suppressed = "suppressed"  # its address or domain is on the suppression list


class InterestStatus(StrEnum):
    interested = "interested"
    not_interested = "not_interested"
    meeting_booked = "meeting_booked"
    out_of_office = "out_of_office"
    wrong_person = "wrong_person"
    unsubscribed = "unsubscribed"


class VerificationStatus(StrEnum):
    valid = "valid"  # the domain takes mail, nothing doubtful about the address
    risky = "risky"  # may be delivered but is a poor prospect: a role address (info@), a disposable domain
    invalid = "invalid"  # would bounce: bad syntax, a domain that does not exist or takes no mail
    unknown = "unknown"  # the DNS could not be asked (timeout, SERVFAIL): verify again later


class TimezoneSource(StrEnum):
    explicit = "explicit"  # given by the caller
    phone = "phone"  # from the phone number's prefix
    country = "country"  # the country's main zone
    campaign = "campaign"  # the campaign's send_window zone
    default = "default"  # UTC: nothing else was known


class Lead(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "leads"
    id_prefix = "lead"
    __tenant_table_args__ = (
        UniqueConstraint("campaign_id", "email"),
        # Suppression and cross-campaign look-ups by address within one ledger.
        Index(None, "workspace_id", "livemode", "email"),
    )

    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    # Normalized by email-validator and lower-cased, so duplicates and suppressions match whatever the casing.
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    timezone: Mapped[str] = mapped_column(String(64))
    timezone_source: Mapped[str] = mapped_column(String(16))
    custom_variables: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.active.value)
    interest_status: Mapped[str | None] = mapped_column(String(24))
    # When interest_status last changed: the funnel counts interested / meetings by day.
    interest_updated_at: Mapped[datetime | None] = mapped_column()
    # The last verification (POST /v1/leads/verify; see imail.leads.verification); null: never verified.
    verification_status: Mapped[str | None] = mapped_column(String(16))
    verification_reasons: Mapped[list[str] | None] = mapped_column()
    verified_at: Mapped[datetime | None] = mapped_column()
    # Loaded only where asked for (LeadRepository reads for the API): lazy="raise" keeps every other reader of
    # leads (the sending engine) from paying a query per lead for them.
    tag_rows: Mapped[list[LeadTag]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True, order_by="LeadTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        """The lead's tags, sorted (what API responses show)."""
        return [row.tag for row in self.tag_rows]


class LeadTag(TenantMixin, Base):
    """One tag of one lead, normalized (leads.tags): a row per tag, so that filtering by tag is an indexed
    look-up on both backends rather than a scan through a JSON column."""

    __tablename__ = "lead_tags"
    # The tenant index is (workspace_id, livemode, tag): "the leads tagged x" in one ledger.
    __tenant_key__ = "tag"

    lead_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
