"""Per-campaign sending figures shown on the campaign (`sent_today`, `reply_rate_7d`).

Computed, never stored: the sending and analytics work fills `campaign_stats` from the messages and replies
it records. Until anything is sent they are honest zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from imail.campaigns.repository import CampaignRepository
from imail.kit.tenancy import Tenant


@dataclass(frozen=True, slots=True)
class CampaignStats:
    sent_today: int = 0
    reply_rate_7d: float = 0.0


async def campaign_stats(
    session: AsyncSession, tenant: Tenant, campaign_ids: Sequence[str], now: datetime
) -> dict[str, CampaignStats]:
    """`sent_today` (UTC day of `now`) and `reply_rate_7d` (replies / sent over the 7 UTC days ending with
    today's, rounded to 4 places; 0 when nothing was sent) per campaign, read from the analytics rollups: one
    query."""
    if not campaign_ids:
        return {}
    today = now.date() if now.tzinfo is None else now.astimezone(UTC).date()
    sends = await CampaignRepository(session, tenant).campaign_sends(
        campaign_ids, today - timedelta(days=6), today
    )
    found = {
        cid: CampaignStats(sent_today, round(replied / sent, 4) if sent else 0.0)
        for cid, (sent_today, sent, replied) in sends.items()
    }
    return {campaign_id: found.get(campaign_id, CampaignStats()) for campaign_id in campaign_ids}
