"""CSV exports of leads, suppressions and replies: every field and custom variable, the list's filters (tags
included), keyset pages, CSV injection neutralised, tenants apart, scopes enforced."""

from __future__ import annotations

import csv
import io

import pytest

from imail.kit import csv_export
from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.leads.export import export_leads
from imail.leads.schemas import LeadFilter
from imail.models import Reply
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, create_campaign, make_inbox


def parse(body: bytes | str) -> list[dict[str, str]]:
    text = body.decode() if isinstance(body, bytes) else body
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
async def campaign(client, workspace) -> dict:
    return await create_campaign(client, workspace.headers(), [])


async def bulk(client, headers, campaign_id: str, leads: list[dict]) -> None:
    response = await client.post(
        "/v1/leads/bulk", headers=headers, json={"campaign_id": campaign_id, "leads": leads}
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == len(leads), response.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-5", "'-5"),  # a text that looks like a number is still a text: neutralised (OWASP)
        ("plain", "plain"),
        ("a=b", "a=b"),  # only the first character counts
        ("", ""),
    ],
)
def test_neutralize(value, expected):
    assert csv_export.safe_cell(value) == expected


def test_numbers_stay_numbers():
    # Stored as JSON numbers: written as they are (no formula can hide in a number's text).
    assert [csv_export.safe_cell(v) for v in (-5, 3, -1.5, True, None)] == ["-5", "3", "-1.5", "true", ""]


async def test_lead_export_has_every_field_and_variable_and_neutralises(client, workspace, campaign):
    h = workspace.headers()
    await bulk(
        client,
        h,
        campaign["id"],
        [
            {
                "email": "evil@example.com",
                "first_name": '=HYPERLINK("http://x","y")',
                "last_name": "+cmd",
                "company": "@corp",
                "title": "-title",
                "custom_variables": {"plan": "pro", "debt": -5, "note": "=1+1", "neg": "-5"},
                "tags": ["VIP", "eu"],
            },
            {"email": "plain@example.com", "first_name": "Ann", "custom_variables": {"city": "Lyon"}},
        ],
    )
    response = await client.get("/v1/leads/export", headers=h)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = parse(response.content)
    header = list(rows[0].keys())
    assert header[:3] == ["id", "campaign_id", "email"] and "tags" in header
    assert header[-5:] == [f"custom_variables.{n}" for n in ("city", "debt", "neg", "note", "plan")]
    by_email = {row["email"]: row for row in rows}
    evil = by_email["evil@example.com"]
    assert evil["first_name"] == '\'=HYPERLINK("http://x","y")'
    assert (evil["last_name"], evil["company"], evil["title"]) == ("'+cmd", "'@corp", "'-title")
    assert evil["custom_variables.note"] == "'=1+1"
    assert evil["custom_variables.neg"] == "'-5"
    assert evil["custom_variables.debt"] == "-5"
    assert evil["custom_variables.city"] == ""
    assert evil["tags"] == "eu;vip"
    assert (evil["status"], evil["livemode"]) == ("active", "true")
    assert by_email["plain@example.com"]["custom_variables.city"] == "Lyon"
    # No text cell of the file begins with a formula character (the number -5 is the one exception).
    for row in rows:
        for name, value in row.items():
            if name != "custom_variables.debt":
                assert not value.startswith(csv_export.FORMULA_STARTS), (name, value)


async def test_lead_export_filters_pages_and_tenants(client, workspace, other_workspace, campaign, database):
    h = workspace.headers()
    other_campaign = await create_campaign(client, h, [])
    await bulk(
        client,
        h,
        campaign["id"],
        [{"email": f"l{i}@example.com", "tags": ["a"] if i % 2 else []} for i in range(7)],
    )
    await bulk(client, h, other_campaign["id"], [{"email": "x@example.com", "tags": ["a", "b"]}])
    theirs = await create_campaign(client, other_workspace.headers(), [])
    await bulk(
        client, other_workspace.headers(), theirs["id"], [{"email": "them@example.com", "tags": ["a"]}]
    )
    test_mode = await create_campaign(client, workspace.headers(live=False), [])
    await bulk(client, workspace.headers(live=False), test_mode["id"], [{"email": "test@example.com"}])

    every = parse((await client.get("/v1/leads/export", headers=h)).content)
    assert len(every) == 8 and {r["livemode"] for r in every} == {"true"}
    assert "them@example.com" not in {r["email"] for r in every}
    assert [r["id"] for r in every] == sorted(r["id"] for r in every)  # oldest first
    tagged = parse((await client.get("/v1/leads/export?tag=A", headers=h)).content)
    assert sorted(r["email"] for r in tagged) == [
        "l1@example.com",
        "l3@example.com",
        "l5@example.com",
        "x@example.com",
    ]
    both = parse((await client.get("/v1/leads/export?tag=a&tag=b", headers=h)).content)
    assert [r["email"] for r in both] == ["x@example.com"]
    one_campaign = parse(
        (await client.get(f"/v1/leads/export?campaign_id={campaign['id']}", headers=h)).content
    )
    assert len(one_campaign) == 7
    nothing = await client.get("/v1/leads/export?tag=none", headers=h)
    assert nothing.status_code == 200 and len(nothing.text.splitlines()) == 1  # the header alone
    assert_error(await client.get("/v1/leads/export?tag=a,b", headers=h), 400, "tags")
    assert_error(await client.get("/v1/leads/export?email=nope", headers=h), 400, "email")

    # The service function pages by keyset: small pages give the same rows, none repeated.
    tenant = Tenant(workspace.workspace_id, True)
    chunks = [chunk async for chunk in await export_leads(database, tenant, LeadFilter(), batch=3)]
    assert len(chunks) == 1 + 3  # header, then pages of 3, 3 and 2
    assert parse(b"".join(chunks)) == every


async def test_export_scopes(client, workspace, database):
    no_leads = await make_key(database, workspace.workspace_id, scopes=["campaigns:read"])
    assert_error(await client.get("/v1/leads/export", headers=bearer(no_leads)), 403, None)
    assert_error(await client.get("/v1/suppressions/export", headers=bearer(no_leads)), 403, None)
    assert_error(await client.get("/v1/replies/export", headers=bearer(no_leads)), 403, None)
    reader = await make_key(database, workspace.workspace_id, scopes=["leads:read"])
    assert (await client.get("/v1/leads/export", headers=bearer(reader))).status_code == 200
    assert (await client.get("/v1/leads/export")).status_code == 401


async def test_suppressions_export(client, workspace, other_workspace):
    h = workspace.headers()
    for body in ({"email": "-Bob@Example.com"}, {"domain": "spam.example"}):
        created = await client.post("/v1/suppressions", headers=h, json=body)
        assert created.status_code == 201, created.text
    await client.post("/v1/suppressions", headers=other_workspace.headers(), json={"email": "x@y.example"})
    rows = parse((await client.get("/v1/suppressions/export", headers=h)).content)
    assert [(r["type"], r["value"], r["reason"]) for r in rows] == [
        ("email", "'-bob@example.com", "manual"),
        ("domain", "spam.example", "manual"),
    ]
    only = parse((await client.get("/v1/suppressions/export?type=domain", headers=h)).content)
    assert [r["value"] for r in only] == ["spam.example"]


async def test_replies_export(client, workspace, other_workspace, database):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(client, h, [inbox])
    await bulk(client, h, campaign["id"], [{"email": "lee@example.com"}])
    lead = (await client.get("/v1/leads", headers=h)).json()["data"][0]
    now = utcnow()
    async with database.transaction() as session:
        for label, text in (("interested", '=HYPERLINK("http://x","y")'), ("not_interested", "No thanks")):
            session.add(
                Reply(
                    workspace_id=workspace.workspace_id,
                    livemode=True,
                    direction="inbound",
                    campaign_id=campaign["id"],
                    lead_id=lead["id"],
                    inbox_id=inbox,
                    reference_ids=[],
                    from_email="lee@example.com",
                    from_name="Lee",
                    to_emails=["a@acme.test", "b@acme.test"],
                    subject="Re: hi",
                    headers={},
                    text=text + "\n> secret quoted history",
                    reply_text=text,
                    label=label,
                    status="received",
                    received_at=now,
                )
            )
    rows = parse((await client.get("/v1/replies/export", headers=h)).content)
    assert [(r["label"], r["reply_text"]) for r in rows] == [
        ("interested", '\'=HYPERLINK("http://x","y")'),
        ("not_interested", "No thanks"),
    ]
    assert rows[0]["to_emails"] == "a@acme.test;b@acme.test"
    assert "text" not in rows[0]
    filtered = parse((await client.get("/v1/replies/export?label=not_interested", headers=h)).content)
    assert [r["label"] for r in filtered] == ["not_interested"]
    assert parse((await client.get("/v1/replies/export", headers=other_workspace.headers())).content) == []
