"""Outbound connections a customer can aim (mail servers, webhooks) under one address policy, and the slow
ones (logins, sends, OAuth exchanges) unable to starve other workspaces:

- mail hosts on loopback, link-local, metadata, unspecified, multicast, private or IPv4-in-IPv6 addresses are
  refused with 400 before anything is dialled (loopback and private ranges allowed with
  IMAIL_MAIL_ALLOW_PRIVATE);
- a server that does not speak the protocol is described in our words, never with the bytes it sent;
- webhook URLs carrying a loopback IPv4 inside IPv6 (compatible, SIIT, NAT64, 6to4, Teredo) are refused;
- no request holds a database connection while it waits on a mail server or an OAuth provider, and a workspace
  has at most `outbound_concurrency` such waits at once (429 past it, shared across processes through Redis).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from imail.mail import imap, smtp
from imail.mail.endpoint import Endpoint, MailConnectionError
from imail.main import create_app
from tests.conftest import make_settings
from tests.fixtures.factories import make_workspace
from tests.fixtures.inbound import make_outreach
from tests.fixtures.ports import free_port
from tests.hardening.test_security import loopback_name
from tests.inboxes.conftest import Mailbox, unique_email
from tests.webhooks.test_router import strict_client  # noqa: F401

# --- real loopback listeners --------------------------------------------------------------------------------


class Listener:
    """A TCP server on loopback that accepts and then says `banner` (or nothing: a server that never answers).
    Counts connections, so a test can wait for them and tell whether anything was dialled at all."""

    def __init__(self, banner: bytes | None = None):
        self.banner = banner
        self.accepted = 0
        self.port = 0
        self._changed = asyncio.Condition()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> Listener:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.banner is not None:
            writer.write(self.banner)
        async with self._changed:
            self.accepted += 1
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def poke(self) -> None:
        """Wake `wait_for` to look at its predicate again (something else it watches changed)."""
        async with self._changed:
            self._changed.notify_all()

    def release(self) -> None:
        """Drop every connection (a reset): whoever waits on one fails at once."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def silent() -> AsyncIterator[Listener]:
    """A mail server that accepts connections and never says a word."""
    listener = await Listener().start()
    yield listener
    await listener.close()


@asynccontextmanager
async def api(database_url: str, **overrides) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    """The API with these settings (its own lifespan), and the app (to look at its database pool)."""
    app = create_app(make_settings(database_url, **overrides))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        yield http, app


def inbox_body(
    smtp_host: str = "127.0.0.1",
    smtp_port: int = 2525,
    imap_host: str = "127.0.0.1",
    imap_port: int = 1143,
    **extra,
) -> dict:
    return {
        "email": unique_email(),
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "smtp_security": "none",
        "smtp_password": "a",
        "imap_host": imap_host,
        "imap_port": imap_port,
        "imap_security": "none",
        "imap_password": "b",
        **extra,
    }


async def tracked(listener: Listener, coroutine: Awaitable) -> asyncio.Task:
    """A request run as a task whose end also wakes anyone waiting on the listener."""
    task = asyncio.ensure_future(coroutine)
    task.add_done_callback(lambda _t: asyncio.ensure_future(listener.poke()))
    return task


async def idle_in_transaction(database_url: str) -> int:
    """Connections to the run's PostgreSQL database sitting idle inside an open transaction (0 on SQLite)."""
    if not database_url.startswith("postgresql"):
        return 0
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()


# --- item 4: mail servers on internal addresses -------------------------------------------------------------

NEVER_ALLOWED = [
    "169.254.169.254",  # cloud metadata
    "fd00:ec2::254",  # … its IPv6 address
    "169.254.10.1",
    "fe80::1",  # link-local
    "0.0.0.0",
    "::",  # unspecified: Linux delivers these to this machine
    "224.0.0.1",
    "255.255.255.255",
    "ff02::1",  # multicast, broadcast
    "240.0.0.1",  # reserved
    "::ffff:127.0.0.1",
    "::127.0.0.1",
    "::ffff:0:7f00:1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",  # IPv4 in IPv6
    "::ffff:169.254.169.254",
]
PRIVATE_ONLY_WHEN_ALLOWED = [
    "127.0.0.1",
    "127.0.0.2",
    "::1",
    "localhost",
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "100.64.0.1",
    "fd12:3456::1",
]


async def test_mail_hosts_on_internal_addresses_are_refused_before_any_dial(client, workspace, silent):
    for side in ("smtp", "imap"):
        for host in NEVER_ALLOWED:
            body = inbox_body(**{f"{side}_host": host, f"{side}_port": silent.port})
            for live in (True, False):  # test mode never dials, but takes no such address either
                response = await client.post("/v1/inboxes", json=body, headers=workspace.headers(live=live))
                assert response.status_code == 400, (host, live, response.text)
                error = response.json()["error"]
                assert error["code"] == "invalid_field" and error["field"] == f"{side}_host", (host, error)
                assert "refused" in error["message"] and f"{side.upper()} host {host}" in error["message"]
    assert silent.accepted == 0  # nothing was dialled, not even the side whose host was fine
    assert (await client.get("/v1/inboxes", headers=workspace.headers())).json()["data"] == []


async def test_loopback_and_private_mail_hosts_need_the_operators_consent(database_url, database, silent):
    workspace = await make_workspace(database, "surge", "Acme")
    public = "93.184.216.34"  # the other side: a public address, so only `side` is at fault
    async with api(database_url, mail_allow_private=False, mail_timeout=2.0) as (http, _app):
        for side in ("smtp", "imap"):
            for host in PRIVATE_ONLY_WHEN_ALLOWED:
                body = inbox_body(
                    **{
                        "smtp_host": public,
                        "imap_host": public,
                        f"{side}_host": host,
                        f"{side}_port": silent.port,
                    }
                )
                response = await http.post("/v1/inboxes", json=body, headers=workspace.headers())
                assert response.status_code == 400, (host, response.text)
                error = response.json()["error"]
                assert error["field"] == f"{side}_host", (host, error)
                assert "IMAIL_MAIL_ALLOW_PRIVATE=1" in error["message"], (host, error)
    assert silent.accepted == 0


async def test_a_name_that_resolves_to_this_machine_is_refused(database_url, database, silent):
    workspace = await make_workspace(database, "surge", "Acme")
    name = loopback_name()
    async with api(database_url, mail_allow_private=False, mail_timeout=2.0) as (http, _app):
        body = inbox_body(smtp_host="93.184.216.34", imap_host=name, imap_port=silent.port)
        response = await http.post("/v1/inboxes", json=body, headers=workspace.headers())
    assert response.status_code == 400 and response.json()["error"]["field"] == "imap_host", response.text
    assert name in response.json()["error"]["message"]
    assert silent.accepted == 0


@pytest.mark.parametrize(
    "dial", ["smtp login", "smtp session", "smtp send", "imap login", "imap client", "imap sent"]
)
async def test_the_policy_holds_at_every_dial(silent, dial):
    """Workers dial stored inboxes long after they were checked (and a name may point elsewhere by then): the
    adapters themselves refuse, unless the operator allows private addresses."""
    endpoint = Endpoint("127.0.0.1", silent.port, "none", "ana@example.com", password="x")
    calls = {
        "smtp login": lambda: smtp.check_login(endpoint, timeout=5),
        "smtp session": lambda: smtp.open_session(endpoint, timeout=5),
        "smtp send": lambda: smtp.send_message(
            endpoint, "ana@example.com", ["b@example.org"], b"x", timeout=5
        ),
        "imap login": lambda: imap.check_login(endpoint, timeout=5),
        "imap client": lambda: imap.open_client(endpoint, timeout=5),
        "imap sent": lambda: imap.find_in_sent(endpoint, ["<a@b>"], timeout=5),
    }
    with pytest.raises(MailConnectionError) as caught:
        await calls[dial]()
    assert caught.value.stage == "address" and caught.value.field.endswith("_host")
    assert "127.0.0.1 is a loopback address" in caught.value.message
    assert silent.accepted == 0


async def test_a_stored_inbox_on_a_now_refused_address_is_not_dialled_by_reconnect(
    database_url, database, settings, silent
):
    workspace = await make_workspace(database, "surge", "Acme")
    outreach = await make_outreach(
        database,
        settings,
        workspace.workspace_id,
        smtp_port=silent.port,
        imap_port=silent.port,
        imap_security="none",
    )
    async with api(database_url, mail_allow_private=False) as (http, _app):
        response = await http.post(f"/v1/inboxes/{outreach.inbox_id}/reconnect", headers=workspace.headers())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "disconnected"
    assert "refused" in response.json()["last_error"]
    assert silent.accepted == 0


async def test_tls_is_still_checked_against_the_host_name(client, workspace, mailbox: Mailbox):
    """The dial goes to the checked address, but the certificate must match the name the customer gave."""
    response = await client.post(
        "/v1/inboxes",
        headers=workspace.headers(),
        json=mailbox.body(smtp_host="localhost", imap_host="localhost"),
    )
    assert response.status_code == 201, response.text


SECRET = "secret-banner-5f3a"
WRONG_PROTOCOL = {
    "smtp": [
        b"* OK [CAPABILITY IMAP4rev1] " + SECRET.encode() + b" ready.\r\n",  # an IMAP server
        b"SSH-2.0-OpenSSH_9.2p1 " + SECRET.encode() + b"\r\n",
        b"HTTP/1.1 400 Bad Request\r\nServer: " + SECRET.encode() + b"\r\n\r\n",
    ],
    "imap": [
        b"220 mail.internal ESMTP " + SECRET.encode() + b"\r\n",  # an SMTP server
        b"SSH-2.0-OpenSSH_9.2p1 " + SECRET.encode() + b"\r\n",
        b"* BYE " + SECRET.encode() + b"\r\n",
    ],
}


@pytest.mark.parametrize(
    ("side", "banner"), [(side, b) for side, banners in WRONG_PROTOCOL.items() for b in banners]
)
async def test_a_server_speaking_another_protocol_is_described_in_our_words(
    client, workspace, side, banner, mailbox: Mailbox
):
    other = await Listener(banner).start()
    try:
        body = mailbox.body(
            **{f"{side}_host": "127.0.0.1", f"{side}_port": other.port, f"{side}_security": "none"}
        )
        response = await client.post("/v1/inboxes", json=body, headers=workspace.headers())
    finally:
        await other.close()
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"].startswith(side), error
    for leaked in (
        SECRET,
        "b'",
        "invalid literal",
        "Malformed",
        "SSH-2.0",
        "HTTP/1.1",
        "220 mail",
        "* OK",
        "* BYE",
    ):
        assert leaked not in error["message"], error["message"]
    assert side.upper() in error["message"]


# --- item 6: IPv4 inside IPv6 in webhook URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/hook",  # IPv4-compatible
        "http://[64:ff9b::7f00:1]/hook",  # NAT64
        "http://[64:ff9b:1:7f00:0:100::]/hook",  # NAT64, local-use prefix
        "http://[2002:7f00:1::]/hook",  # 6to4
        "http://[::ffff:0:7f00:1]/hook",  # SIIT
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",  # metadata, IPv4-mapped in hex
        "http://[fd00:ec2::254]/latest/meta-data/",  # metadata over IPv6
    ],
)
async def test_webhook_urls_with_ipv4_inside_ipv6_are_refused(strict_client, workspace, url):  # noqa: F811
    response = await strict_client.post(
        "/v1/webhooks", headers=workspace.headers(), json={"url": url, "events": ["*"]}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "url" and "private" in response.json()["error"]["message"]


async def test_webhook_urls_with_a_public_ipv4_inside_ipv6_are_accepted(strict_client, workspace):  # noqa: F811
    response = await strict_client.post(
        "/v1/webhooks",
        headers=workspace.headers(),
        json={"url": "https://[64:ff9b::5db8:d822]/hook", "events": ["*"]},
    )
    assert response.status_code == 201, response.text


# --- item 3: no database connection held across a third party's wait; a per-workspace cap ----------------


async def test_connects_waiting_on_a_silent_server_hold_no_database_connection(
    database_url, database, silent
):
    """Many connects from one workspace to a server that never answers: while every one of them waits, no
    database connection is checked out or idle in a transaction, and another workspace is served."""
    acme = await make_workspace(database, "surge", "Acme")
    globex = await make_workspace(database, "surge", "Globex")
    waiting = 16  # more than SQLite's pool holds (5 + 10); PostgreSQL's is cut to 2 + 1 below
    async with api(database_url, database_pool_size=2, outbound_concurrency=waiting, mail_timeout=60.0) as (
        http,
        app,
    ):
        body = inbox_body(smtp_port=silent.port, imap_port=silent.port)
        tasks = [
            await tracked(
                silent,
                http.post("/v1/inboxes", json={**body, "email": unique_email()}, headers=acme.headers()),
            )
            for _ in range(waiting)
        ]
        # Every connect is at the server (SMTP and IMAP each), or some request gave up waiting for the
        # database.
        await silent.wait_for(lambda: silent.accepted == 2 * waiting or any(t.done() for t in tasks))
        assert not [t.result().text for t in tasks if t.done()]
        assert app.state.database.engine.pool.checkedout() == 0
        assert await idle_in_transaction(database_url) == 0
        campaigns = await http.get("/v1/campaigns", headers=globex.headers())
        assert campaigns.status_code == 200, campaigns.text
        assert not any(t.done() for t in tasks)  # … answered while all of Acme's connects still wait
        silent.release()
        responses = await asyncio.gather(*tasks)
    assert {r.status_code for r in responses} == {400}, [r.text for r in responses if r.status_code != 400]


async def test_a_workspace_past_its_outbound_limit_gets_429_and_others_are_unaffected(
    database_url, database, silent
):
    acme = await make_workspace(database, "surge", "Acme")
    globex = await make_workspace(database, "surge", "Globex")
    limit, fired = 4, 7
    async with api(database_url, mail_timeout=60.0) as (http, app):
        assert app.state.settings.outbound_concurrency == limit  # the default
        body = inbox_body(smtp_port=silent.port, imap_port=silent.port)
        tasks = [
            await tracked(
                silent,
                http.post("/v1/inboxes", json={**body, "email": unique_email()}, headers=acme.headers()),
            )
            for _ in range(fired)
        ]
        await silent.wait_for(
            lambda: (
                silent.accepted > 2 * limit
                or (silent.accepted == 2 * limit and sum(t.done() for t in tasks) == fired - limit)
            )
        )
        assert silent.accepted == 2 * limit
        refused = [t.result() for t in tasks if t.done()]
        assert len(refused) == fired - limit
        for response in refused:
            assert response.status_code == 429, response.text
            assert response.json()["error"]["code"] == "rate_limited"
            assert int(response.headers["Retry-After"]) >= 1
            assert "in progress" in response.json()["error"]["message"]

        other = await tracked(
            silent, http.post("/v1/inboxes", json={**body, "email": unique_email()}, headers=globex.headers())
        )
        await silent.wait_for(lambda: silent.accepted == 2 * limit + 2 or other.done())
        assert not other.done()  # Globex's connect is at the server, not refused

        waiting = [t for t in tasks if not t.done()]
        silent.release()
        finished = await asyncio.gather(*waiting, other)
        assert {r.status_code for r in finished} == {400}
        closed = free_port()  # a slot is free again: the next connect is tried (and refused by the server)
        again = await http.post(
            "/v1/inboxes", json=inbox_body(smtp_port=closed, imap_port=closed), headers=acme.headers()
        )
        assert again.status_code == 400 and "could not be reached" in again.json()["error"]["message"], (
            again.text
        )


async def test_the_outbound_limit_holds_across_processes_through_redis(
    database_url, database, redis_url, silent
):
    acme = await make_workspace(database, "surge", "Acme")
    body = inbox_body(smtp_port=silent.port, imap_port=silent.port)
    two_processes = {"redis_url": redis_url, "outbound_concurrency": 2, "mail_timeout": 60.0}
    async with (
        api(database_url, **two_processes) as (first, _a),
        api(database_url, **two_processes) as (second, _b),
    ):
        tasks = [
            await tracked(
                silent,
                first.post("/v1/inboxes", json={**body, "email": unique_email()}, headers=acme.headers()),
            )
            for _ in range(2)
        ]
        await silent.wait_for(lambda: silent.accepted == 4 or any(t.done() for t in tasks))
        assert not any(t.done() for t in tasks)
        refused = await second.post(
            "/v1/inboxes", json={**body, "email": unique_email()}, headers=acme.headers()
        )
        assert refused.status_code == 429, refused.text
        assert silent.accepted == 4
        silent.release()
        assert {r.status_code for r in await asyncio.gather(*tasks)} == {400}
        closed = free_port()
        freed = await second.post(
            "/v1/inboxes", json=inbox_body(smtp_port=closed, imap_port=closed), headers=acme.headers()
        )
        assert freed.status_code == 400, freed.text  # both leases were returned


def _setup_state(setup_url: str) -> str:
    return parse_qs(urlsplit(setup_url).query)["state"][0]


@pytest.mark.parametrize("path", ["reconnect", "patch server settings", "reply to a lead", "oauth callback"])
async def test_no_request_path_holds_a_database_connection_while_it_waits(
    database_url, database, settings, silent, path
):
    """Each request that talks to a third party, stalled on a silent peer: the one database connection the
    process has stays free (another workspace is served meanwhile) and nothing idles in a transaction."""
    acme = await make_workspace(database, "surge", "Acme")
    globex = await make_workspace(database, "surge", "Globex")
    outreach = await make_outreach(
        database,
        settings,
        acme.workspace_id,
        smtp_port=silent.port,
        imap_port=silent.port,
        imap_security="none",
    )
    overrides = {"database_pool_size": 1, "mail_timeout": 60.0}
    if path == "oauth callback":
        overrides.update(
            google_client_id="imail-test",
            google_client_secret="imail-test-secret",
            google_token_url=f"http://127.0.0.1:{silent.port}/token",
        )
    async with api(database_url, **overrides) as (http, app):
        headers = acme.headers()
        if path == "reconnect":
            request = http.post(f"/v1/inboxes/{outreach.inbox_id}/reconnect", headers=headers)
        elif path == "patch server settings":
            request = http.patch(
                f"/v1/inboxes/{outreach.inbox_id}", headers=headers, json={"smtp_port": silent.port}
            )
        elif path == "reply to a lead":
            request = http.post(
                f"/v1/leads/{outreach.leads[0].lead_id}/reply", headers=headers, json={"text": "Hi"}
            )
        else:
            created = await http.post(
                "/v1/inboxes", headers=headers, json={"provider": "google", "email": unique_email()}
            )
            assert created.status_code == 201, created.text
            state = _setup_state(created.json()["setup_url"])
            request = http.get("/oauth/callback", params={"state": state, "code": "code-1"})
        task = await tracked(silent, request)
        await silent.wait_for(lambda: silent.accepted >= 1 or task.done())
        assert not task.done(), task.result().text
        assert app.state.database.engine.pool.checkedout() == 0
        assert await idle_in_transaction(database_url) == 0
        campaigns = await http.get("/v1/campaigns", headers=globex.headers())
        assert campaigns.status_code == 200, campaigns.text
        assert not task.done()
        silent.release()
        response = await task
    assert response.status_code in (200, 400, 503), response.text  # the peer hung up: told, not a crash
