"""`POST /v1/leads/import`: CSV upload with a column mapping, per-row results, all-or-nothing on a bad
file."""

from __future__ import annotations

import json

import pytest

from imail.leads import csv_import
from tests.fixtures.outreach import assert_error, counts, create_campaign

MAPPING = {
    "email": "Work Email",
    "first_name": "First",
    "company": "Org",
    "country": "Country",
    "custom_variables": {"city": "City", "pain_point": "Pain"},
}


@pytest.fixture
async def campaign(client, workspace) -> dict:
    return await create_campaign(client, workspace.headers(), [])


async def upload(client, headers, campaign_id: str, content: bytes | str, mapping=None, **form):
    data = {"campaign_id": campaign_id, **form}
    if mapping is not None:
        data["mapping"] = mapping if isinstance(mapping, str) else json.dumps(mapping)
    raw = content.encode() if isinstance(content, str) else content
    return await client.post(
        "/v1/leads/import", headers=headers, data=data, files={"file": ("leads.csv", raw, "text/csv")}
    )


async def test_import_with_a_mapping(client, workspace, campaign):
    csv_text = (
        "Work Email,First,Org,Country,City,Pain,Ignored\n"
        "ana@example.com,Ana,Acme,FR,Lyon,churn,x\n"
        "\n"
        '"bo@example.com","Bo, Jr.","Multi\nLine Inc",,,,\n'
        "not-an-address,Cy,,,,,\n"
        "ANA@example.com,Ana again,,,,,\n"
        "short,row\n"
        ",,,,,,\n"
        "di@example.com,Di,,Narnia,,,\n"
    )
    response = await upload(client, workspace.headers(), campaign["id"], csv_text, MAPPING)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "lead_import_result" and body["campaign_id"] == campaign["id"]
    assert (body["total"], body["created"], body["duplicates"], body["suppressed"], body["invalid"]) == (
        6,
        2,
        1,
        0,
        3,
    )
    results = body["results"]
    assert [(r["index"], r["status"], r["line"]) for r in results] == [
        (0, "created", 2),
        (1, "created", 5),
        (2, "invalid", 6),
        (3, "duplicate", 7),
        (4, "invalid", 8),
        (5, "invalid", 10),
    ]
    assert results[2]["field"] == "email" and "(column 'Work Email')" in results[2]["reason"]
    assert results[3]["reason"] == "repeats the address of row 0"
    assert results[4]["field"] is None and "2 columns; the header has 7" in results[4]["reason"]
    assert results[5]["field"] == "country" and "(column 'Country')" in results[5]["reason"]

    ana = (await client.get(f"/v1/leads/{results[0]['id']}", headers=workspace.headers())).json()
    assert (ana["first_name"], ana["company"], ana["country"], ana["timezone"]) == (
        "Ana",
        "Acme",
        "FR",
        "Europe/Paris",
    )
    assert ana["custom_variables"] == {"city": "Lyon", "pain_point": "churn"}
    bo = (await client.get(f"/v1/leads/{results[1]['id']}", headers=workspace.headers())).json()
    assert (bo["first_name"], bo["company"], bo["custom_variables"]) == ("Bo, Jr.", "Multi\nLine Inc", {})


async def test_default_mapping_delimiters_and_bom(client, workspace, campaign):
    csv_text = "Mail;First Name\nana@example.com;Ana\n"
    # Without a mapping the file needs a column named like email.
    assert (
        "no column is named email"
        in assert_error(await upload(client, workspace.headers(), campaign["id"], csv_text), 400, "mapping")[
            "message"
        ]
    )
    csv_text = "\ufeffE-Mail;First Name;LAST_NAME;Title\nana@example.com;Ana;Diaz;CTO\n"
    body = (await upload(client, workspace.headers(), campaign["id"], csv_text.encode("utf-8"))).json()
    assert body["created"] == 1
    lead = (await client.get(f"/v1/leads/{body['results'][0]['id']}", headers=workspace.headers())).json()
    assert (lead["email"], lead["first_name"], lead["last_name"], lead["title"]) == (
        "ana@example.com",
        "Ana",
        "Diaz",
        "CTO",
    )
    tabbed = await upload(
        client, workspace.headers(), campaign["id"], "email\tcompany\nbo@example.com\tAcme\n", delimiter="\\t"
    )
    assert tabbed.json()["created"] == 1


async def test_bad_mapping_is_400_and_writes_nothing(client, database, workspace, campaign):
    cases = [
        ("{not json", "mapping"),
        ('["email"]', "mapping"),
        ({"email": "Missing Column"}, "mapping.email"),
        ({"frist_name": "First", "email": "Work Email"}, "mapping.frist_name"),
        ({"first_name": "First"}, "mapping.email"),
        ({"email": "Work Email", "custom_variables": ["City"]}, "mapping.custom_variables"),
        (
            {"email": "Work Email", "custom_variables": {"bad name": "City"}},
            "mapping.custom_variables.bad name",
        ),
        ({"email": "Work Email", "first_name": 3}, "mapping.first_name"),
    ]
    before = await counts(database)
    for mapping, field in cases:
        response = await upload(
            client, workspace.headers(), campaign["id"], "Work Email,First,City\na@example.com,A,B\n", mapping
        )
        assert_error(response, 400, field, case=mapping)
    assert await counts(database) == before


async def test_bad_files_write_nothing(client, database, workspace, campaign):
    h = workspace.headers()
    before = await counts(database)
    good_rows = "".join(f"row{i}@example.com,R{i}\n" for i in range(csv_import.BATCH + 10))
    cases = [
        (b"", "file", "empty"),
        (b"email,first_name\n", "file", "no data rows"),
        # Past the first batch (already inserted in the transaction) the file turns out not to be UTF-8.
        (("email,first_name\n" + good_rows).encode() + b"caf\xe9@example.com,x\n", "file", "not UTF-8"),
        (
            "email,first_name\n" + good_rows + '"unterminated@example.com,x\n',
            "file",
            "not valid CSV (line 5012)",
        ),
        ('email,first_name\n"a@example.com"x,y\n', "file", "not valid CSV (line 2)"),
    ]
    for content, field, words in cases:
        response = await upload(client, h, campaign["id"], content)
        assert words in assert_error(response, 400, field)["message"]
    assert_error(
        await upload(client, h, campaign["id"], "email\na@example.com\n", delimiter="::"), 400, "delimiter"
    )
    assert_error(
        await upload(client, h, "cmp_01HZZZZZZZZZZZZZZZZZZZZZZZ", "email\na@example.com\n"),
        400,
        "campaign_id",
    )
    assert_error(
        await client.post("/v1/leads/import", headers=h, data={"campaign_id": campaign["id"]}), 400, "file"
    )
    assert await counts(database) == before


async def test_repeats_across_batches_count_once_and_suppressions_apply(client, workspace, campaign):
    h = workspace.headers()
    await client.post("/v1/suppressions", headers=h, json={"domain": "blocked.example"})
    rows = [f"p{i}@example.com" for i in range(csv_import.BATCH + 5)]
    rows += ["p3@example.com", "someone@blocked.example"]
    body = (await upload(client, h, campaign["id"], "email\n" + "\n".join(rows) + "\n")).json()
    assert (body["total"], body["created"], body["duplicates"], body["suppressed"]) == (
        len(rows),
        len(rows) - 2,
        1,
        1,
    )
    assert body["results"][-2]["reason"] == "repeats the address of row 3"
    assert body["results"][-1]["status"] == "suppressed"
    again = (await upload(client, h, campaign["id"], "email\np1@example.com\nnew@example.com\n")).json()
    assert [r["status"] for r in again["results"]] == ["duplicate", "created"]


async def test_import_scope_and_tenancy(client, database, workspace, other_workspace, campaign):
    from tests.fixtures.factories import bearer, make_key

    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["leads:read"]))
    assert (await upload(client, reader, campaign["id"], "email\na@example.com\n")).status_code == 403
    assert_error(
        await upload(client, other_workspace.headers(), campaign["id"], "email\na@example.com\n"),
        400,
        "campaign_id",
    )
    assert_error(
        await upload(client, workspace.headers(live=False), campaign["id"], "email\na@example.com\n"),
        400,
        "campaign_id",
    )
    assert (await counts(database))["leads"] == 0


async def test_unknown_form_fields_are_refused(client, database, workspace, campaign):
    response = await upload(
        client, workspace.headers(), campaign["id"], "email\na@example.com\n", maping='{"email": "email"}'
    )
    assert_error(response, 400, "maping")
    assert (await counts(database))["leads"] == 0
