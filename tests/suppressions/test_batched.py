"""`add_suppression` inside `batched_suppressions`: entries and their leads written together when the block
ends, the first reason for an address kept, nothing written when the block fails."""

from __future__ import annotations

import pytest

from imail.kit.tenancy import Tenant
from imail.models.suppression import SuppressionReason, SuppressionType
from imail.suppressions.repository import SuppressionRepository
from imail.suppressions.service import add_suppression, batched_suppressions
from tests.fixtures.outreach import create_campaign

EMAIL = SuppressionType.email


async def new_lead(client, headers, campaign_id: str, email: str) -> str:
    response = await client.post(
        "/v1/leads", headers=headers, json={"campaign_id": campaign_id, "email": email}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def lead_status(client, headers, lead_id: str) -> str:
    return (await client.get(f"/v1/leads/{lead_id}", headers=headers)).json()["status"]


async def one_lead(client, workspace, email: str) -> tuple[str, Tenant]:
    campaign = await create_campaign(client, workspace.headers(), [])
    return await new_lead(client, workspace.headers(), campaign["id"], email), Tenant(
        workspace.workspace_id, True
    )


async def entries(client, headers) -> dict[str, str]:
    listed = (await client.get("/v1/suppressions", headers=headers)).json()["data"]
    return {entry["value"]: entry["reason"] for entry in listed}


async def test_entries_and_their_leads_are_written_when_the_block_ends(client, workspace, database):
    h = workspace.headers()
    first, second = await create_campaign(client, h, []), await create_campaign(client, h, [])
    ana = [await new_lead(client, h, campaign["id"], "ana@example.com") for campaign in (first, second)]
    bo = await new_lead(client, h, first["id"], "bo@example.com")
    untouched = await new_lead(client, h, first["id"], "cy@example.com")
    tenant = Tenant(workspace.workspace_id, True)

    async with database.transaction() as session, batched_suppressions(session):
        await add_suppression(session, tenant, EMAIL, "ana@example.com", SuppressionReason.bounced)
        await add_suppression(session, tenant, EMAIL, "bo@example.com", SuppressionReason.unsubscribed)
        await add_suppression(session, tenant, EMAIL, "ana@example.com", SuppressionReason.unsubscribed)
        async with batched_suppressions(session):  # an inner block joins the outer one
            await add_suppression(session, tenant, EMAIL, "bo@example.com", SuppressionReason.bounced)
        assert await SuppressionRepository(session, tenant).find(EMAIL.value, "ana@example.com") is None

    assert await entries(client, h) == {"ana@example.com": "bounced", "bo@example.com": "unsubscribed"}
    assert [await lead_status(client, h, lead_id) for lead_id in (*ana, bo)] == ["suppressed"] * 3
    assert await lead_status(client, h, untouched) == "active"


async def test_a_block_that_fails_suppresses_nothing(client, workspace, database):
    h = workspace.headers()
    lead_id, tenant = await one_lead(client, workspace, "ana@example.com")

    with pytest.raises(RuntimeError):
        async with database.transaction() as session, batched_suppressions(session):
            await add_suppression(session, tenant, EMAIL, "ana@example.com", SuppressionReason.bounced)
            raise RuntimeError("the batch failed")

    assert await entries(client, h) == {}
    assert await lead_status(client, h, lead_id) == "active"


async def test_outside_a_block_the_entry_is_written_at_once(client, workspace, database):
    h = workspace.headers()
    lead_id, tenant = await one_lead(client, workspace, "ana@example.com")

    async with database.transaction() as session:
        await add_suppression(session, tenant, EMAIL, "ana@example.com", SuppressionReason.bounced)
        assert (
            await SuppressionRepository(session, tenant).find(EMAIL.value, "ana@example.com")
        ).reason == "bounced"

    assert await lead_status(client, h, lead_id) == "suppressed"
