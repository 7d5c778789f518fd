"""`POST /v1/campaigns/{id}/preview`: a step rendered for one lead, as it would be sent."""

from __future__ import annotations

import pytest

from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, create_campaign, make_inbox, step


@pytest.fixture
async def setup(client, database, workspace):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(
        client,
        h,
        [inbox],
        custom_variables=["pain_point"],
        steps=[
            step(
                subject="{Hi|Hello} {{first_name|there}}",
                body='<p>{{company}} has {{pain_point}}.</p><p>{{title|Boss}}, <a href="https://x.io">see</a></p>',
                variants=[{"weight": 1}, {"subject": "Quick one for {{company}}", "weight": 1}],
            ),
            step(subject=None, body="<p>Bump, {{first_name|there}}</p>"),
        ],
    )
    lead = await client.post(
        "/v1/leads",
        headers=h,
        json={
            "campaign_id": campaign["id"],
            "email": "ana@acme.example",
            "first_name": "Ana",
            "company": "<b>AT&T</b>",
            "custom_variables": {"pain_point": "churn"},
        },
    )
    assert lead.status_code == 201, lead.text
    return campaign, lead.json()


async def test_preview_renders_a_step_for_a_lead(client, workspace, setup):
    campaign, lead = setup
    url = f"/v1/campaigns/{campaign['id']}/preview"
    response = await client.post(url, headers=workspace.headers(), json={"lead_id": lead["id"], "seed": 3})
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["variant"] == "A" and preview["step"] == 1
    assert preview["subject"] in {"Hi Ana", "Hello Ana"}
    # Lead values are escaped in the HTML; the template's own markup is not.
    assert preview["body"] == (
        '<p>&lt;b&gt;AT&amp;T&lt;/b&gt; has churn.</p><p>Boss, <a href="https://x.io">see</a></p>'
    )
    assert preview["text"] == "<b>AT&T</b> has churn.\n\nBoss, see (https://x.io)"
    assert preview["missing_variables"] == []
    # The same seed, the same choices; without a seed the choice is stable per lead and step.
    assert (
        await client.post(url, headers=workspace.headers(), json={"lead_id": lead["id"], "seed": 3})
    ).json() == preview
    first = (await client.post(url, headers=workspace.headers(), json={"lead_id": lead["id"]})).json()
    assert (await client.post(url, headers=workspace.headers(), json={"lead_id": lead["id"]})).json() == first
    subjects = {
        (await client.post(url, headers=workspace.headers(), json={"lead_id": lead["id"], "seed": s})).json()[
            "subject"
        ]
        for s in range(12)
    }
    assert subjects == {"Hi Ana", "Hello Ana"}

    b = (
        await client.post(url, headers=workspace.headers(), json={"lead_id": lead["id"], "variant": "B"})
    ).json()
    assert b["variant"] == "B" and b["subject"] == "Quick one for <b>AT&T</b>"

    # A follow-up threads under the first email's subject, as this lead got it (for every seed).
    for seed in range(8):
        first_subject = (
            await client.post(url, headers=workspace.headers(), json={"lead_id": lead["id"], "seed": seed})
        ).json()["subject"]
        follow = (
            await client.post(
                url, headers=workspace.headers(), json={"lead_id": lead["id"], "step": 2, "seed": seed}
            )
        ).json()
        assert follow["subject"] == "Re: " + first_subject
    assert follow["text"] == "Bump, Ana" and follow["variant"] is None
    for i in range(6):  # without a seed too, for several leads (each gets its own stable choice)
        other = await client.post(
            "/v1/leads",
            headers=workspace.headers(),
            json={"campaign_id": campaign["id"], "email": f"p{i}@acme.example", "first_name": "Ana"},
        )
        body = {"lead_id": other.json()["id"]}
        first_subject = (await client.post(url, headers=workspace.headers(), json=body)).json()["subject"]
        follow = (await client.post(url, headers=workspace.headers(), json={**body, "step": 2})).json()
        assert follow["subject"] == "Re: " + first_subject


async def test_preview_lists_missing_variables(client, workspace, setup):
    campaign, _ = setup
    bare = await client.post(
        "/v1/leads",
        headers=workspace.headers(),
        json={"campaign_id": campaign["id"], "email": "bo@x.example"},
    )
    preview = (
        await client.post(
            f"/v1/campaigns/{campaign['id']}/preview",
            headers=workspace.headers(),
            json={"lead_id": bare.json()["id"]},
        )
    ).json()
    assert preview["missing_variables"] == ["company", "pain_point"]
    assert preview["text"] == "has .\n\nBoss, see (https://x.io)"


async def test_preview_errors(client, database, workspace, other_workspace, setup):
    campaign, lead = setup
    h = workspace.headers()
    url = f"/v1/campaigns/{campaign['id']}/preview"
    other = await create_campaign(client, h, [])
    stranger = await client.post(
        "/v1/leads", headers=h, json={"campaign_id": other["id"], "email": "x@y.example"}
    )
    cases = [
        ({"lead_id": stranger.json()["id"]}, "lead_id"),
        ({"lead_id": "lead_01HZZZZZZZZZZZZZZZZZZZZZZZ"}, "lead_id"),
        ({"lead_id": lead["id"], "step": 3}, "step"),
        ({"lead_id": lead["id"], "step": 0}, "step"),
        ({"lead_id": lead["id"], "variant": "C"}, "variant"),
        ({"lead_id": lead["id"], "step": 2, "variant": "A"}, "variant"),
        ({}, "lead_id"),
    ]
    for body, field in cases:
        assert_error(await client.post(url, headers=h, json=body), 400, field)
    assert (
        await client.post(url, headers=other_workspace.headers(), json={"lead_id": lead["id"]})
    ).status_code == 404
    assert (
        await client.post(url, headers=workspace.headers(live=False), json={"lead_id": lead["id"]})
    ).status_code == 404


async def test_preview_needs_read_scopes_only(client, database, workspace, setup):
    campaign, lead = setup
    url = f"/v1/campaigns/{campaign['id']}/preview"
    readers = bearer(
        await make_key(database, workspace.workspace_id, scopes=["campaigns:read", "leads:read"])
    )
    assert (await client.post(url, headers=readers, json={"lead_id": lead["id"]})).status_code == 200
    campaigns_only = bearer(await make_key(database, workspace.workspace_id, scopes=["campaigns:write"]))
    error = assert_error(
        await client.post(url, headers=campaigns_only, json={"lead_id": lead["id"]}), 403, None
    )
    assert "leads:read" in error["message"]
