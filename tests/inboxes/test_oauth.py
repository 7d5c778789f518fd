"""Google/Microsoft inboxes end to end, against a local OAuth provider (authorize, token, introspection
endpoints on loopback), aiosmtpd accepting XOAUTH2 with the provider's access tokens, and Dovecot's oauth2
passdb validating them at the provider's introspection endpoint; the whole flow in each security mode."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from imail.inboxes import connection, oauth
from imail.inboxes.monitor import check_due_inboxes
from imail.kit import crypto
from imail.kit.clock import utcnow
from imail.mail import imap, smtp
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair
from tests.fixtures.imap import DovecotServer, dovecot_available, require_dovecot
from tests.fixtures.oauth import CLIENT_ID, CLIENT_SECRET, OAuthTestProvider
from tests.fixtures.security import each_security, encrypted
from tests.fixtures.smtp import SmtpServer
from tests.inboxes.conftest import events_of, inbox_rows, load_inbox, unique_email

PUBLIC_URL = "https://imail.test"


@pytest.fixture(scope="module")
def provider() -> Iterator[OAuthTestProvider]:
    server = OAuthTestProvider()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oauth_smtp_servers(provider: OAuthTestProvider, tls_cert: CertPair) -> Iterator[dict[str, SmtpServer]]:
    """One XOAUTH2 SMTP server per security mode, started when a test first asks for that mode."""
    servers: dict[str, SmtpServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def oauth_smtp(
    oauth_smtp_servers: dict[str, SmtpServer], provider: OAuthTestProvider, tls_cert: CertPair, security: str
) -> SmtpServer:
    """The XOAUTH2 SMTP server in the test's security mode (STARTTLS unless `@each_security`)."""
    if security not in oauth_smtp_servers:
        server = SmtpServer(security=security, cert=tls_cert, token_validator=provider.valid_access_token)
        server.start()
        oauth_smtp_servers[security] = server
    return oauth_smtp_servers[security]


@pytest.fixture(scope="module")
def oauth_dovecot(provider: OAuthTestProvider, tls_cert: CertPair) -> Iterator[DovecotServer | None]:
    if not dovecot_available():
        yield None
        return
    server = DovecotServer(tls_cert, oauth_introspection_url=provider.introspection_url)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def settings(database_url, tls_cert, provider, oauth_smtp, oauth_dovecot, security):
    require_dovecot()
    provider.revoke_all()
    provider.account_email = None
    provider.deny_next = False
    provider.rotate_refresh_tokens = False
    provider.client_secret = CLIENT_SECRET
    provider.token_failures.clear()
    oauth_smtp.messages.clear()
    oauth.ACCESS_TOKENS.clear()
    servers = {}
    for name in ("google", "microsoft"):
        servers.update(
            {
                f"{name}_client_id": CLIENT_ID,
                f"{name}_client_secret": CLIENT_SECRET,
                f"{name}_authorize_url": provider.authorize_url,
                f"{name}_token_url": provider.token_url,
                f"{name}_smtp_server": f"127.0.0.1:{oauth_smtp.port}/{security}",
                f"{name}_imap_server": f"127.0.0.1:{oauth_dovecot.port_for(security)}/{security}",
            }
        )
    return make_settings(
        database_url, mail_ca_file=str(tls_cert.ca_file), mail_timeout=5.0, public_url=PUBLIC_URL, **servers
    )


async def start_google_inbox(
    client, workspace, email: str | None = None, provider_name: str = "google"
) -> dict:
    response = await client.post(
        "/v1/inboxes",
        json={"provider": provider_name, "email": email or unique_email(), "name": "Ana"},
        headers=workspace.headers(),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def consent(client, setup_url: str) -> httpx.Response:
    """What the user's browser does: open the setup_url at the provider, follow its redirect back to imail."""
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(setup_url)
    assert at_provider.status_code == 302, at_provider.text
    return await client.get(at_provider.headers["location"])


@each_security
async def test_the_oauth_flow_ends_with_an_inbox_that_sends_through_xoauth2(
    client, workspace, database, settings, provider, oauth_smtp, oauth_dovecot, security
):
    email = unique_email()
    inbox = await start_google_inbox(client, workspace, email)
    assert inbox["status"] == "setup_pending" and inbox["provider"] == "google"
    assert inbox["health_score"] == 35  # neutral 70 × 0.5 while it cannot send
    setup = urlparse(inbox["setup_url"])
    query = {k: v[0] for k, v in parse_qs(setup.query).items()}
    assert inbox["setup_url"].startswith(provider.authorize_url + "?")
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"] == f"{PUBLIC_URL}/oauth/callback"
    assert query["scope"] == "https://mail.google.com/" and query["login_hint"] == email
    assert query["access_type"] == "offline"

    done = await consent(client, inbox["setup_url"])
    assert done.status_code == 200, done.text
    assert email in done.text and done.headers["content-type"].startswith("text/html")

    connected = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert connected["status"] == "connected" and connected["setup_url"] is None
    assert connected["health_score"] == 70
    assert (connected["smtp_port"], connected["imap_port"]) == (
        oauth_smtp.port,
        oauth_dovecot.port_for(security),
    )
    assert (connected["smtp_security"], connected["imap_security"]) == (security, security)

    # Dovecot checked the IMAP XOAUTH2 login at the provider's introspection endpoint.
    assert any(path == "/introspect" for _, path, _ in provider.requests)
    # The refresh token is stored encrypted only.
    refresh_token = next(iter(provider.refresh_tokens))
    row = (await inbox_rows(database))[0]
    assert refresh_token not in " ".join(str(v) for v in row.values())
    assert crypto.secret_box(settings).decrypt(row["oauth_refresh_token_encrypted"]) == refresh_token

    # Sending: a fresh access token from the refresh token, then SMTP AUTH XOAUTH2.
    oauth.ACCESS_TOKENS.forget(inbox["id"])
    stored = await load_inbox(database, inbox["id"])
    async with httpx.AsyncClient() as http:
        endpoints = await connection.endpoints_for(stored, settings, http)
    assert any(
        form.get("grant_type") == "refresh_token" for _, path, form in provider.requests if path == "/token"
    )
    assert endpoints.smtp.oauth_token and endpoints.smtp.password is None
    reply = await smtp.send_message(
        endpoints.smtp,
        email,
        ["lead@example.org"],
        b"Subject: hello\r\n\r\nSent with XOAUTH2.\r\n",
        allow_private=True,
        timeout=5.0,
        ca_file=settings.mail_ca_file,
    )
    assert reply.startswith("2.0.0")
    [message] = oauth_smtp.messages
    assert message.mechanism == "XOAUTH2" and message.login == email
    assert message.envelope_to == ["lead@example.org"] and b"Sent with XOAUTH2." in message.data
    # Reading: IMAP XOAUTH2 with the same token, by the login check and by the reader's long-lived client.
    await imap.check_login(endpoints.imap, allow_private=True, timeout=5.0, ca_file=settings.mail_ca_file)
    reader = await imap.open_client(
        endpoints.imap, allow_private=True, timeout=5.0, ca_file=settings.mail_ca_file
    )
    try:
        assert (await imap.examine(reader, "INBOX", timeout=5.0)).name == "INBOX"
    finally:
        await imap.close_client(reader)
    # Every login (the connection check's, sending's, reading's) was XOAUTH2, encrypted as the mode says.
    smtp_logins = [(mechanism, tls) for user, mechanism, tls in oauth_smtp.logins if user == email]
    assert smtp_logins == [("XOAUTH2", encrypted(security))] * 2
    assert oauth_dovecot.logins_over_tls(email, at_least=3) == [encrypted(security)] * 3


async def test_microsoft_uses_its_own_scopes(client, workspace, provider):
    inbox = await start_google_inbox(client, workspace, provider_name="microsoft")
    scope = parse_qs(urlparse(inbox["setup_url"]).query)["scope"][0]
    assert "offline_access" in scope and "SMTP.Send" in scope and "IMAP.AccessAsUser.All" in scope
    assert (await consent(client, inbox["setup_url"])).status_code == 200


async def test_a_setup_link_works_once(client, workspace, provider):
    inbox = await start_google_inbox(client, workspace)
    async with httpx.AsyncClient() as browser:
        location = (await browser.get(inbox["setup_url"])).headers["location"]
        second = (await browser.get(inbox["setup_url"])).headers["location"]
    assert (await client.get(location)).status_code == 200
    replay = await client.get(second)
    assert replay.status_code == 400 and replay.json()["error"]["field"] == "state"
    assert "already used" in replay.json()["error"]["message"]


async def test_a_forged_or_missing_state_is_refused(client, workspace):
    await start_google_inbox(client, workspace)
    for query in (
        "code=abc",
        "code=abc&state=",
        "code=abc&state=garbage",
        "code=abc&state=gAAAAABlkZ-not-a-token",
    ):
        response = await client.get(f"/oauth/callback?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["field"] == "state"


async def test_a_state_signed_with_another_key_is_refused(client, workspace, settings):
    inbox = await start_google_inbox(client, workspace)
    stored_nonce = parse_qs(urlparse(inbox["setup_url"]).query)["state"][0]
    assert oauth.read_state(settings, stored_nonce) is not None
    other = settings.model_copy(update={"secret_key": "another-secret-key-0123456789-abcdefghijklmn"})
    assert oauth.read_state(other, stored_nonce) is None


async def test_denied_consent_is_a_400_and_the_inbox_stays_pending(client, workspace, provider):
    inbox = await start_google_inbox(client, workspace)
    provider.deny_next = True
    response = await consent(client, inbox["setup_url"])
    assert response.status_code == 400 and "access_denied" in response.json()["error"]["message"]
    again = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert again["status"] == "setup_pending" and again["setup_url"]
    assert (await consent(client, again["setup_url"])).status_code == 200  # the link was not spent


async def test_signing_in_as_another_account_fails_the_xoauth2_login(client, workspace, provider, database):
    inbox = await start_google_inbox(client, workspace)
    provider.account_email = "someone-else@example.com"
    response = await consent(client, inbox["setup_url"])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "smtp" and "XOAUTH2" in error["message"]
    row = (await inbox_rows(database))[0]
    assert row["status"] == "setup_pending" and row["oauth_refresh_token_encrypted"] is None


async def test_a_revoked_token_disconnects_and_re_consent_reconnects(
    client, workspace, provider, database, worker_context
):
    inbox = await start_google_inbox(client, workspace)
    assert (await consent(client, inbox["setup_url"])).status_code == 200
    provider.revoke_all()
    oauth.ACCESS_TOKENS.clear()

    ctx = worker_context()
    assert await check_due_inboxes(ctx, utcnow() + timedelta(hours=1)) == 1
    down = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert down["status"] == "disconnected" and "invalid_grant" in down["last_error"]
    assert down["setup_url"], "a disconnected OAuth inbox offers a new consent link"
    [event] = await events_of(database, "inbox.disconnected", inbox["id"])
    assert event.data["side"] == "both"

    assert (await consent(client, down["setup_url"])).status_code == 200
    up = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert up["status"] == "connected" and up["setup_url"] is None
    assert len(await events_of(database, "inbox.reconnected", inbox["id"])) == 1


async def test_a_rotated_refresh_token_is_stored(
    client, workspace, provider, database, settings, worker_context
):
    inbox = await start_google_inbox(client, workspace)
    assert (await consent(client, inbox["setup_url"])).status_code == 200
    first = crypto.secret_box(settings).decrypt(
        (await inbox_rows(database))[0]["oauth_refresh_token_encrypted"]
    )
    provider.rotate_refresh_tokens = True
    oauth.ACCESS_TOKENS.clear()
    assert await check_due_inboxes(worker_context(), utcnow() + timedelta(hours=1)) == 1
    second = crypto.secret_box(settings).decrypt(
        (await inbox_rows(database))[0]["oauth_refresh_token_encrypted"]
    )
    assert second != first and second in provider.refresh_tokens
    assert (await load_inbox(database, inbox["id"])).status == "connected"


async def test_oauth_inboxes_take_no_server_settings(client, workspace):
    response = await client.post(
        "/v1/inboxes",
        json={"provider": "google", "email": unique_email(), "smtp_host": "smtp.example.com"},
        headers=workspace.headers(),
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "smtp_host"
    inbox = await start_google_inbox(client, workspace)
    patched = await client.patch(
        f"/v1/inboxes/{inbox['id']}", json={"imap_password": "x"}, headers=workspace.headers()
    )
    assert patched.status_code == 400 and patched.json()["error"]["field"] == "imap_password"


async def test_an_unconfigured_provider_is_a_400_naming_the_setting(client, workspace, settings, app):
    app.state.settings = settings.model_copy(update={"microsoft_client_id": None})
    response = await client.post(
        "/v1/inboxes", json={"provider": "microsoft", "email": unique_email()}, headers=workspace.headers()
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "provider" and "IMAIL_MICROSOFT_CLIENT_ID" in error["message"]


async def test_the_same_address_twice_is_409_for_oauth_too(client, workspace):
    email = unique_email()
    await start_google_inbox(client, workspace, email)
    again = await client.post(
        "/v1/inboxes", json={"provider": "google", "email": email}, headers=workspace.headers()
    )
    assert again.status_code == 409
