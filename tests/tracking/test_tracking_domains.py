"""Custom tracking domains (issue 25, item 4): set on a workspace or an inbox, verified in a real DNS server
on loopback (tests.fixtures.dns), used in the links, pixel and List-Unsubscribe of emails sent through the
real SMTP sink once verified, and served by `Host` with the API hidden and other workspaces' tokens
refused."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from imail.models import Workspace
from imail.models.sending import Message
from imail.models.suppression import Suppression
from imail.workers import maintenance
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair
from tests.fixtures.dns import DnsServer
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error
from tests.sending.conftest import freeze_api_clock

PUBLIC = "t.acme.test"  # the host of IMAIL_PUBLIC_URL in these tests
DOMAIN = "track.acme.com"
BROWSER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"}
STEP = {
    "subject": "Hi {{first_name}}",
    "body": '<p>See <a href="https://acme.io/demo">the demo</a>. <a href="{{unsubscribe_url}}">Stop</a></p>',
}
FOLLOW_UP = {"body": "<p>bump</p>", "delay": {"amount": 1, "unit": "days"}}


@pytest.fixture
def settings(database_url: str, tls_cert: CertPair, dns_server: DnsServer):
    return make_settings(
        database_url,
        mail_ca_file=str(tls_cert.ca_file),
        mail_timeout=5.0,
        public_url=f"https://{PUBLIC}",
        sending_retry_seconds=60.0,
        dns_resolver=dns_server.address,
        dns_timeout=2.0,
    )


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)
    monkeypatch.setattr("imail.workspaces.router.utcnow", clock)  # when a domain was checked
    monkeypatch.setattr("imail.inboxes.service.utcnow", clock)


async def set_domain(client, headers, domain: str | None, path: str = "/v1/workspace") -> dict:
    response = await client.patch(path, headers=headers, json={"tracking_domain": domain})
    assert response.status_code == 200, response.text
    return response.json()


def urls_in(message: EmailMessage) -> dict[str, list[str]]:
    """Every tracking URL of a sent email, by kind, as full URLs."""
    html = message.get_body(("html",)).get_content()
    return {
        "clicks": re.findall(r'href="(https://[^"/]+/t/c/[^"]+)"', html),
        "pixel": re.findall(r"(https://[^'\"/]+/t/o/[^'\")]+)", html),
        "body_unsubscribe": re.findall(r'href="(https://[^"/]+/u/[^"]+)"', html),
        "header_unsubscribe": re.findall(r"<(https://[^>]+)>", message["List-Unsubscribe"]),
    }


async def send_one(outreach, sink, email: str = "ana@example.org") -> EmailMessage:
    campaign = await outreach.campaign([STEP, FOLLOW_UP])
    await outreach.lead(campaign["id"], email, first_name="Ana")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 1
    return message_from_bytes(sink.messages[-1].data, policy=default)


# --- verification -------------------------------------------------------------------------------------


async def test_a_cname_to_the_public_host_verifies_the_domain(client, workspace, dns_server):
    dns_server.zone.add(DOMAIN, "CNAME", f"{PUBLIC}.")
    h = workspace.headers()
    before = (await client.get("/v1/workspace", headers=h)).json()
    assert before["tracking_domain"] is None and before["tracking_domain_status"] is None

    updated = await set_domain(client, h, "  Track.ACME.com. ")
    assert updated["tracking_domain"] == DOMAIN
    assert updated["tracking_domain_status"] == "verified" and updated["tracking_domain_reason"] is None
    assert updated["tracking_domain_checked_at"] is not None
    assert (DOMAIN, "CNAME") in dns_server.zone.queries  # asked the configured resolver, not the system's
    assert (await client.get("/v1/workspace", headers=h)).json() == updated
    # Other settings are independent of it.
    assert (await client.patch("/v1/workspace", headers=h, json={"postal_address": "1 Main St"})).json()[
        "tracking_domain_status"
    ] == "verified"

    cleared = await set_domain(client, h, None)
    assert (
        cleared["tracking_domain"],
        cleared["tracking_domain_status"],
        cleared["tracking_domain_checked_at"],
        cleared["tracking_domain_reason"],
    ) == (None, None, None, None)


async def test_wrong_target_nxdomain_and_a_failing_resolver_are_statuses_not_errors(
    client,
    workspace,
    dns_server,
):
    h = workspace.headers()
    dns_server.zone.add("wrong.acme.com", "CNAME", "elsewhere.example.net.")
    wrong = await set_domain(client, h, "wrong.acme.com")
    assert wrong["tracking_domain_status"] == "failed"
    assert (
        "elsewhere.example.net" in wrong["tracking_domain_reason"]
        and PUBLIC in wrong["tracking_domain_reason"]
    )

    missing = await set_domain(client, h, "missing.acme.com")  # NXDOMAIN
    assert missing["tracking_domain_status"] == "failed"
    assert f"missing.acme.com. CNAME {PUBLIC}." in missing["tracking_domain_reason"]  # says what to add

    dns_server.zone.fail("down.acme.com")  # SERVFAIL: unknown, not absent
    down = await set_domain(client, h, "down.acme.com")
    assert down["tracking_domain_status"] == "pending"
    assert "DNS did not answer" in down["tracking_domain_reason"]

    # The record appears and the resolver recovers: verify re-checks now.
    dns_server.zone.failing.clear()
    dns_server.zone.add("down.acme.com", "CNAME", f"{PUBLIC}.")
    verified = await client.post("/v1/workspace/tracking-domain/verify", headers=h)
    assert verified.status_code == 200, verified.text
    assert verified.json()["tracking_domain_status"] == "verified"
    assert verified.json()["tracking_domain_reason"] is None

    # A verified domain stays in use while DNS cannot be asked, …
    dns_server.zone.fail("down.acme.com")
    still = (await client.post("/v1/workspace/tracking-domain/verify", headers=h)).json()
    assert (
        still["tracking_domain_status"] == "verified"
        and "DNS did not answer" in still["tracking_domain_reason"]
    )
    # … and stops being used once DNS says it points elsewhere.
    dns_server.zone.failing.clear()
    dns_server.zone.remove("down.acme.com")
    gone = (await client.post("/v1/workspace/tracking-domain/verify", headers=h)).json()
    assert gone["tracking_domain_status"] == "failed"


async def test_addresses_configured_by_the_operator_verify_a_name_without_cname(
    client,
    workspace,
    dns_server,
    settings,
):
    settings.tracking_domain_addresses = "192.0.2.10, 2001:db8::10"
    h = workspace.headers()
    dns_server.zone.add("acme.com", "A", "192.0.2.10")
    dns_server.zone.add("acme.com", "AAAA", "2001:db8:0::10")
    assert (await set_domain(client, h, "acme.com"))["tracking_domain_status"] == "verified"
    dns_server.zone.add("other.acme.com", "A", "198.51.100.7")
    other = await set_domain(client, h, "other.acme.com")
    assert other["tracking_domain_status"] == "failed" and "198.51.100.7" in other["tracking_domain_reason"]


@pytest.mark.parametrize(
    "bad",
    [
        "https://track.acme.com",
        "track.acme.com/path",
        "track.acme.com:8443",
        "192.0.2.1",
        "::1",
        "[::1]",
        "localhost",
        "-track.acme.com",
        "track..acme.com",
        "tr ack.acme.com",
        "x" * 64 + ".acme.com",
        "user@acme.com",
        "acme.123",
        PUBLIC,  # the server's own host: it would hide the API
    ],
)
async def test_a_domain_must_be_a_hostname(client, workspace, bad):
    response = await client.patch("/v1/workspace", headers=workspace.headers(), json={"tracking_domain": bad})
    assert_error(response, 400, "tracking_domain", case=bad)
    assert (await client.get("/v1/workspace", headers=workspace.headers())).json()["tracking_domain"] is None


async def test_who_may_set_and_verify_a_domain(client, database, workspace, other_workspace, dns_server):
    dns_server.zone.add(DOMAIN, "CNAME", f"{PUBLIC}.")
    h = workspace.headers()
    assert_error(await client.post("/v1/workspace/tracking-domain/verify", headers=h), 409, None)
    # Shared by both ledgers: a test key cannot change it; a read-only key cannot change or re-check it.
    assert_error(
        await client.patch(
            "/v1/workspace", headers=workspace.headers(live=False), json={"tracking_domain": DOMAIN}
        ),
        403,
        None,
    )
    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["workspace:read"]))
    assert_error(
        await client.patch("/v1/workspace", headers=reader, json={"tracking_domain": DOMAIN}), 403, None
    )
    await set_domain(client, h, DOMAIN)
    assert_error(await client.post("/v1/workspace/tracking-domain/verify", headers=reader), 403, None)
    assert (await client.get("/v1/workspace", headers=reader)).json()["tracking_domain"] == DOMAIN

    # A domain belongs to one workspace: another may not name it, on itself or on one of its inboxes.
    theirs = other_workspace.headers()
    assert_error(
        await client.patch("/v1/workspace", headers=theirs, json={"tracking_domain": DOMAIN.upper()}),
        409,
        "tracking_domain",
    )
    assert (await client.get("/v1/workspace", headers=theirs)).json()["tracking_domain"] is None


# ---------------------------------------------------------------------------------------- emails and serving


@pytest.mark.usefixtures("sink")
async def test_emails_use_the_verified_domain_and_it_serves_their_links(
    outreach,
    mailbox,
    sink,
    client,
    dns_server,
    clock,
):
    await outreach.connect_inbox(mailbox)
    dns_server.zone.add(DOMAIN, "CNAME", f"{PUBLIC}.")
    await set_domain(client, outreach.headers, DOMAIN)

    message = await send_one(outreach, sink)
    found = urls_in(message)
    assert len(found["clicks"]) == 1 and len(found["pixel"]) == 1
    assert found["body_unsubscribe"] == found["header_unsubscribe"]
    for url in [u for urls in found.values() for u in urls]:
        assert url.startswith(f"https://{DOMAIN}/"), url
    assert PUBLIC not in message.as_string()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The preview shows the same host.
    [lead] = (await client.get("/v1/leads", headers=outreach.headers)).json()["data"]
    preview = await client.post(
        f"/v1/campaigns/{lead['campaign_id']}/preview", headers=outreach.headers, json={"lead_id": lead["id"]}
    )
    assert preview.json()["unsubscribe_url"].startswith(f"https://{DOMAIN}/u/")

    # Requests to the tracking domain (its Host) are served: open, click, the unsubscribe page and one-click.
    clock.advance(minutes=5)
    pixel = await client.get(found["pixel"][0], headers=BROWSER)
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert len(await outreach.events("email.opened")) == 1
    click = await client.get(found["clicks"][0], headers=BROWSER)
    assert click.status_code == 302 and click.headers["location"] == "https://acme.io/demo"
    unsubscribe = found["header_unsubscribe"][0]
    assert (await client.get(unsubscribe)).status_code == 200
    done = await client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "ana@example.org" in done.text
    assert [s.value for s in await outreach.rows(Suppression)] == ["ana@example.org"]

    # The API and every other page do not exist there, with or without a key.
    for path in ("/v1/workspace", "/v1/campaigns", "/health", "/status", "/docs", "/openapi.json", "/"):
        for headers in (outreach.headers, {}):
            response = await client.get(f"https://{DOMAIN}{path}", headers=headers)
            assert response.status_code == 404, (path, response.status_code, response.text[:200])
    body = {"name": "x", "inbox_ids": outreach.inbox_ids, "steps": [STEP]}
    create = await client.post(f"https://{DOMAIN}/v1/campaigns", headers=outreach.headers, json=body)
    assert create.status_code == 404
    assert len((await client.get("/v1/campaigns", headers=outreach.headers)).json()["data"]) == 1

    # The main host still serves the API and every tenant's links (emails sent before the domain was set).
    assert (await client.get("/v1/workspace", headers=outreach.headers)).status_code == 200
    on_main = found["clicks"][0].replace(f"https://{DOMAIN}", f"https://{PUBLIC}")
    assert (await client.get(on_main, headers=BROWSER)).status_code == 302


@pytest.mark.usefixtures("sink")
async def test_an_unverified_domain_is_not_used(outreach, mailbox, sink, client, dns_server):
    await outreach.connect_inbox(mailbox)
    dns_server.zone.add(DOMAIN, "CNAME", "somewhere-else.example.net.")
    assert (await set_domain(client, outreach.headers, DOMAIN))["tracking_domain_status"] == "failed"
    message = await send_one(outreach, sink)
    for url in [u for urls in urls_in(message).values() for u in urls]:
        assert url.startswith(f"https://{PUBLIC}/"), url
    assert DOMAIN not in message.as_string()


@pytest.mark.usefixtures("sink")
async def test_an_inbox_domain_overrides_the_workspace_domain(
    outreach,
    mailbox,
    sink,
    client,
    dns_server,
    other_workspace,
):
    inbox_id = await outreach.connect_inbox(mailbox)
    dns_server.zone.add(DOMAIN, "CNAME", f"{PUBLIC}.")
    dns_server.zone.add("links.sales.acme.com", "CNAME", f"{PUBLIC}.")
    await set_domain(client, outreach.headers, DOMAIN)
    inbox = await set_domain(client, outreach.headers, "links.sales.acme.com", f"/v1/inboxes/{inbox_id}")
    assert (
        inbox["tracking_domain"] == "links.sales.acme.com" and inbox["tracking_domain_status"] == "verified"
    )
    verify = await client.post(f"/v1/inboxes/{inbox_id}/tracking-domain/verify", headers=outreach.headers)
    assert verify.status_code == 200 and verify.json()["tracking_domain_status"] == "verified"

    message = await send_one(outreach, sink)
    for url in [u for urls in urls_in(message).values() for u in urls]:
        assert url.startswith("https://links.sales.acme.com/"), url
    pixel = urls_in(message)["pixel"][0]
    assert (await client.get(pixel, headers=BROWSER)).status_code == 200

    # Another workspace's key does not see the inbox; its domain is not theirs to take.
    theirs = other_workspace.headers()
    assert_error(
        await client.post(f"/v1/inboxes/{inbox_id}/tracking-domain/verify", headers=theirs), 404, None
    )
    assert_error(
        await client.patch(f"/v1/inboxes/{inbox_id}", headers=theirs, json={"tracking_domain": "x.acme.com"}),
        404,
        None,
    )
    assert_error(
        await client.patch("/v1/workspace", headers=theirs, json={"tracking_domain": "links.sales.acme.com"}),
        409,
        "tracking_domain",
    )
    assert_error(
        await client.patch(
            f"/v1/inboxes/{inbox_id}", headers=outreach.headers, json={"tracking_domain": "1.2.3.4"}
        ),
        400,
        "tracking_domain",
    )


@pytest.mark.usefixtures("sink")
async def test_a_token_is_refused_on_another_workspaces_domain(
    outreach,
    mailbox,
    sink,
    client,
    dns_server,
    other_workspace,
    clock,
):
    """Workspace A's email links, presented on workspace B's tracking domain: 404, nothing recorded."""
    await outreach.connect_inbox(mailbox)
    dns_server.zone.add("t.globex.com", "CNAME", f"{PUBLIC}.")
    assert (await set_domain(client, other_workspace.headers(), "t.globex.com"))[
        "tracking_domain_status"
    ] == ("verified")
    found = urls_in(await send_one(outreach, sink))  # workspace A has no domain: the public host
    assert found["pixel"][0].startswith(f"https://{PUBLIC}/")
    clock.advance(minutes=5)

    def on_b(url: str) -> str:
        return url.replace(f"https://{PUBLIC}", "https://t.globex.com")

    pixel = await client.get(on_b(found["pixel"][0]), headers=BROWSER)
    assert pixel.status_code == 200  # the image, always; the open is not counted
    assert await outreach.events("email.opened") == []
    assert (await client.get(on_b(found["clicks"][0]), headers=BROWSER)).status_code == 404
    assert await outreach.events("email.clicked") == []
    assert (await client.get(on_b(found["header_unsubscribe"][0]))).status_code == 404
    assert (await client.post(on_b(found["header_unsubscribe"][0]))).status_code == 404
    assert await outreach.rows(Suppression) == []
    [message] = await outreach.rows(Message)
    assert message.opened_at is None and message.clicked_at is None
    # B's key does not make the API appear on B's domain either.
    assert (
        await client.get("https://t.globex.com/v1/workspace", headers=other_workspace.headers())
    ).status_code == 404
    # On the main host the same links work.
    assert (await client.get(found["clicks"][0], headers=BROWSER)).status_code == 302


@pytest.mark.usefixtures("sink")
async def test_the_worker_rechecks_domains_and_links_fall_back(
    outreach,
    mailbox,
    sink,
    client,
    dns_server,
    clock,
    workspace,
):
    await outreach.connect_inbox(mailbox)
    dns_server.zone.add(DOMAIN, "CNAME", f"{PUBLIC}.")
    await set_domain(client, outreach.headers, DOMAIN)
    assert await maintenance.recheck_tracking_domains(outreach.ctx) == 0  # just checked: nothing due

    dns_server.zone.remove(DOMAIN)  # the customer removed the CNAME
    clock.now = clock.now.replace(year=clock.now.year + 1)  # far past any check interval
    assert await maintenance.recheck_tracking_domains(outreach.ctx) == 1
    [row] = await outreach.rows(Workspace, Workspace.id == workspace.workspace_id)
    assert row.tracking_domain_status == "failed" and row.tracking_domain_checked_at == clock.now
    message = await send_one(outreach, sink)
    assert all(u.startswith(f"https://{PUBLIC}/") for urls in urls_in(message).values() for u in urls)

    # The record comes back: the worker verifies the domain again without a call.
    dns_server.zone.add(DOMAIN, "CNAME", f"{PUBLIC}.")
    clock.now = clock.now.replace(year=clock.now.year + 1)
    assert await maintenance.recheck_tracking_domains(outreach.ctx) == 1
    assert (await client.get("/v1/workspace", headers=outreach.headers)).json()["tracking_domain_status"] == (
        "verified"
    )


async def test_a_proxy_may_ask_which_hosts_get_a_certificate(client, workspace, dns_server):
    """Caddy's on-demand TLS asks before issuing: only the public host and verified tracking domains."""
    dns_server.zone.add(DOMAIN, "CNAME", f"{PUBLIC}.")
    dns_server.zone.add("pending.acme.com", "CNAME", "elsewhere.example.net.")

    async def ask(domain: str) -> int:
        return (await client.get("/tls/ask", params={"domain": domain})).status_code

    assert await ask(DOMAIN) == 404  # pointing at us is not enough: a workspace must have it, verified
    await set_domain(client, workspace.headers(), DOMAIN)
    assert await ask(DOMAIN) == 200 and await ask(DOMAIN.upper() + ".") == 200
    assert await ask(PUBLIC) == 200
    await set_domain(client, workspace.headers(), "pending.acme.com")  # failed: not used, no certificate
    assert await ask("pending.acme.com") == 404 and await ask(DOMAIN) == 404
    assert await ask("") == 404 and (await client.get("/tls/ask")).status_code == 404
    # Asked on a tracking domain itself, it does not exist either.
    dns_server.zone.add("pending.acme.com", "CNAME", f"{PUBLIC}.")
    await client.post("/v1/workspace/tracking-domain/verify", headers=workspace.headers())
    assert (
        await client.get("https://pending.acme.com/tls/ask", params={"domain": DOMAIN})
    ).status_code == 404
