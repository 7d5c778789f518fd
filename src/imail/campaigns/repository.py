from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import case, delete, func, insert, select

from imail.kit.pagination import PageParams
from imail.kit.repository import TenantRepository
from imail.kit.sql import among
from imail.models import Campaign, CampaignInbox, CampaignStatus, Inbox
from imail.models.analytics import AnalyticsDaily


class CampaignRepository(TenantRepository[Campaign]):
    model = Campaign

    async def list_page(self, params: PageParams, status: str | None) -> list[Campaign]:
        stmt = self.select()
        if status is None:
            stmt = stmt.where(Campaign.status != CampaignStatus.archived.value)
        else:
            stmt = stmt.where(Campaign.status == status)
        return await self.page(params, stmt)

    async def inbox_ids(self, campaign_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each campaign's inbox ids in order; callers pass ids of campaigns they already read as this
        tenant."""
        found: dict[str, list[str]] = {cid: [] for cid in campaign_ids}
        if not campaign_ids:
            return found
        # Joined to the tenant's campaigns, so this can never read another tenant's association rows.
        stmt = (
            self.select(CampaignInbox.campaign_id, CampaignInbox.inbox_id)
            .select_from(Campaign)
            .join(CampaignInbox, CampaignInbox.campaign_id == Campaign.id)
            .where(among(Campaign.id, list(campaign_ids)))
            .order_by(CampaignInbox.campaign_id, CampaignInbox.position)
        )
        for campaign_id, inbox_id in (await self.session.execute(stmt)).all():
            found[campaign_id].append(inbox_id)
        return found

    async def set_inboxes(self, campaign_id: str, inbox_ids: Sequence[str]) -> None:
        await self.session.execute(delete(CampaignInbox).where(CampaignInbox.campaign_id == campaign_id))
        if inbox_ids:
            await self.session.execute(
                insert(CampaignInbox),
                [
                    {"campaign_id": campaign_id, "inbox_id": inbox_id, "position": i}
                    for i, inbox_id in enumerate(inbox_ids)
                ],
            )

    async def campaign_sends(
        self, campaign_ids: Sequence[str], first: date, last: date
    ) -> dict[str, tuple[int, int, int]]:
        """(sent on `last`, sent, replied) over the UTC days `first`..`last` (inclusive), per campaign that
        sent anything: one query over the analytics rollups (the campaign's own figures, read here so that
        campaigns does not depend on the analytics package above it)."""
        daily = AnalyticsDaily
        rows = await self.session.execute(
            select(
                daily.campaign_id,
                func.sum(case((daily.day == last, daily.sent), else_=0)),
                func.sum(daily.sent),
                func.sum(daily.replied),
            )
            .where(
                self.pin(daily),
                among(daily.campaign_id, list(campaign_ids)),
                daily.day >= first,
                daily.day <= last,
            )
            .group_by(daily.campaign_id)
        )
        return {
            campaign_id: (int(sent_last or 0), int(sent or 0), int(replied or 0))
            for campaign_id, sent_last, sent, replied in rows
        }


class InboxLookup(TenantRepository[Inbox]):
    """The tenant's inboxes, as far as campaigns need them: which exist and whether they can send."""

    model = Inbox

    async def statuses(self, inbox_ids: Sequence[str]) -> dict[str, str]:
        if not inbox_ids:
            return {}
        stmt = self.select(Inbox.id, Inbox.status).where(among(Inbox.id, list(inbox_ids)))
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}
