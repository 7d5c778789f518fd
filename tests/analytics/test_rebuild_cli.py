"""`imail analytics rebuild` as a user runs it: a separate process, the configured database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import delete, select

from imail.events.service import record_event
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from imail.models.analytics import AnalyticsCampaignDaily, AnalyticsDaily, AnalyticsRef


async def test_rebuild_command_restores_lost_rollups(settings, database, workspace):
    tenant = Tenant(workspace.workspace_id, True)
    async with database.transaction() as session:
        message = new_id("msg")
        await record_event(
            session, tenant, "email.sent", {"message_id": message, "campaign_id": "cmp_a", "step": 1}
        )
        await record_event(
            session, tenant, "email.opened", {"message_id": message, "campaign_id": "cmp_a", "step": 1}
        )
        await record_event(
            session, tenant, "email.opened", {"message_id": message, "campaign_id": "cmp_a", "step": 1}
        )
    async with database.transaction() as session:
        for model in (AnalyticsDaily, AnalyticsCampaignDaily, AnalyticsRef):
            await session.execute(delete(model))
    env = {**os.environ, "IMAIL_DATABASE_URL": settings.database_url, "IMAIL_SECRET_KEY": "s" * 40}
    imail = Path(sys.executable).parent / "imail"
    done = await asyncio.to_thread(
        subprocess.run,
        [str(imail), "analytics", "rebuild", "--json"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["events"] == 3
    async with database.transaction() as session:
        row = (await session.execute(select(AnalyticsDaily))).scalar_one()
    assert (row.sent, row.opened, row.opened_unique, row.campaign_id, row.step) == (1, 2, 1, "cmp_a", 1)
