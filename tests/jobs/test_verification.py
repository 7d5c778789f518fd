"""Lead verification against a real DNS server on loopback: MX, A fallback, NXDOMAIN, a failing resolver, null
MX, disposable and role addresses; the job over many leads (one look-up per domain); filters; tenancy."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from imail.config import Settings
from imail.models import Lead
from tests.conftest import make_settings
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, create_campaign
from tests.jobs.conftest import CHUNK, THRESHOLD, run_jobs


@pytest.fixture
def settings(database_url: str, dns_server) -> Settings:
    return make_settings(
        database_url,
        import_job_threshold=THRESHOLD,
        jobs_chunk_rows=CHUNK,
        dns_resolver=dns_server.address,
        dns_timeout=2,
    )


@pytest.fixture
def zone(dns_server):
    zone = dns_server.zone
    zone.add("acme-mail.com", "MX", "10 mx.acme-mail.com.")
    zone.add("acme-mail.com", "MX", "20 mx2.acme-mail.com.")
    zone.add("a-only.com", "A", "192.0.2.10")  # no MX: mail goes to the A record
    zone.add("nullmx.com", "MX", "0 .")  # RFC 7505: takes no mail
    zone.add("nomail.com", "TXT", '"v=spf1 -all"')  # exists, but neither MX nor an address
    zone.fail("broken-dns.com")  # SERVFAIL
    zone.add("mailinator.com", "MX", "10 mail.mailinator.com.")  # on the disposable list
    # ghost-domain.com: not in the zone at all (NXDOMAIN)
    return zone


EXPECTED = {
    "ana@acme-mail.com": ("valid", []),
    "bo@a-only.com": ("valid", ["no_mx_a_fallback"]),
    "cy@nullmx.com": ("invalid", ["null_mx"]),
    "di@nomail.com": ("invalid", ["domain_not_found"]),
    "ed@ghost-domain.com": ("invalid", ["domain_not_found"]),
    "fay@broken-dns.com": ("unknown", ["dns_unavailable"]),
    "gus@mailinator.com": ("risky", ["disposable_domain"]),
    "info@acme-mail.com": ("risky", ["role_address"]),
    "sales+eu@acme-mail.com": ("risky", ["role_address"]),
    "noreply@ghost-domain.com": ("invalid", ["domain_not_found", "role_address"]),
}


async def add_leads(client, headers, campaign_id: str, emails) -> dict[str, str]:
    response = await client.post(
        "/v1/leads/bulk",
        headers=headers,
        json={"campaign_id": campaign_id, "leads": [{"email": e} for e in emails]},
    )
    assert response.status_code == 200, response.text
    return {r["email"]: r["id"] for r in response.json()["results"]}


async def test_each_kind_of_address(client, workspace, database, settings, zone):
    campaign = await create_campaign(client, workspace.headers(), [])
    ids = await add_leads(client, workspace.headers(), campaign["id"], EXPECTED)
    before = (await client.get(f"/v1/leads/{ids['ana@acme-mail.com']}", headers=workspace.headers())).json()
    assert (before["verification_status"], before["verification_reasons"], before["verified_at"]) == (
        None,
        None,
        None,
    )

    response = await client.post(
        "/v1/leads/verify", headers=workspace.headers(), json={"campaign_id": campaign["id"]}
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["status"], job["progress"]) == (
        "lead_verification",
        "queued",
        {"done": 0, "total": len(EXPECTED)},
    )
    await run_jobs(database, settings)

    done = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert done["status"] == "succeeded" and done["progress"]["done"] == len(EXPECTED)
    assert done["result"] == {"valid": 2, "risky": 3, "invalid": 4, "unknown": 1}
    for email, (status, reasons) in EXPECTED.items():
        lead = (await client.get(f"/v1/leads/{ids[email]}", headers=workspace.headers())).json()
        assert (lead["verification_status"], lead["verification_reasons"]) == (status, reasons), email
        assert lead["verified_at"] is not None

    # Every domain looked up once in the job (its leads are chunked by domain), never twice for MX.
    mx_queries = [name for name, qtype in zone.queries if qtype == "MX"]
    assert sorted(mx_queries) == sorted(set(mx_queries))

    for status, count in (("valid", 2), ("risky", 3), ("invalid", 4), ("unknown", 1)):
        page = (
            await client.get(f"/v1/leads?verification_status={status}&limit=100", headers=workspace.headers())
        ).json()
        assert len(page["data"]) == count, status
    assert (await client.get("/v1/leads?verification_status=unverified", headers=workspace.headers())).json()[
        "data"
    ] == []
    assert_error(
        await client.get("/v1/leads?verification_status=great", headers=workspace.headers()),
        400,
        "verification_status",
    )


async def test_many_leads_given_by_id_and_only_unverified(client, workspace, database, settings, zone):
    campaign = await create_campaign(client, workspace.headers(), [])
    emails = [f"p{i}@acme-mail.com" for i in range(40)] + [f"q{i}@a-only.com" for i in range(20)]
    ids = await add_leads(client, workspace.headers(), campaign["id"], emails)
    chosen = [ids[e] for e in emails[:30]]
    response = await client.post("/v1/leads/verify", headers=workspace.headers(), json={"lead_ids": chosen})
    assert response.status_code == 202, response.text
    await run_jobs(database, settings)
    async with database.transaction() as session:
        rows = dict((await session.execute(select(Lead.id, Lead.verification_status))).all())
    assert {rows[i] for i in chosen} == {"valid"}
    assert {rows[ids[e]] for e in emails[30:]} == {None}

    # The rest of the campaign, leaving out those done.
    response = await client.post(
        "/v1/leads/verify",
        headers=workspace.headers(),
        json={"campaign_id": campaign["id"], "only_unverified": True},
    )
    job = response.json()
    assert job["progress"]["total"] == 30
    await run_jobs(database, settings)
    done = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert done["result"] == {"valid": 30, "risky": 0, "invalid": 0, "unknown": 0}
    assert (await client.get("/v1/leads?verification_status=unverified", headers=workspace.headers())).json()[
        "data"
    ] == []
    mx_queries = [name for name, qtype in zone.queries if qtype == "MX"]
    # One MX look-up per domain per job: acme-mail.com in both jobs, a-only.com in the second only.
    assert sorted(mx_queries) == ["a-only.com", "acme-mail.com", "acme-mail.com"]


async def test_bad_requests_and_tenancy(client, workspace, other_workspace, database, settings, zone):
    campaign = await create_campaign(client, workspace.headers(), [])
    ids = await add_leads(client, workspace.headers(), campaign["id"], ["ana@acme-mail.com"])
    h = workspace.headers()
    assert_error(await client.post("/v1/leads/verify", headers=h, json={}), 400, "campaign_id")
    assert_error(await client.post("/v1/leads/verify", headers=h, json={"lead_ids": []}), 400, "lead_ids")
    assert_error(
        await client.post("/v1/leads/verify", headers=h, json={"campaign_id": "cmp_nope"}), 400, "campaign_id"
    )
    assert_error(await client.post("/v1/leads/verify", headers=h, json={"unknown": 1}), 400, "unknown")
    # Another workspace's lead and campaign are not found.
    other = other_workspace.headers()
    assert_error(
        await client.post("/v1/leads/verify", headers=other, json={"lead_ids": list(ids.values())}),
        400,
        "lead_ids",
    )
    assert_error(
        await client.post("/v1/leads/verify", headers=other, json={"campaign_id": campaign["id"]}),
        400,
        "campaign_id",
    )
    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["leads:read"]))
    assert_error(
        await client.post("/v1/leads/verify", headers=reader, json={"campaign_id": campaign["id"]}), 403, None
    )
    assert (await client.get("/v1/jobs", headers=h)).json()["data"] == []
