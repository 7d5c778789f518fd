"""Security review, as tests: webhook targets can't reach private networks (literals, encodings, DNS answers,
redirects); tracking and unsubscribe tokens can't be forged or moved onto another lead; CSV exports can't
carry formulas; API keys are stored hashed, compared in constant time and never logged; request bodies are
capped, chunked ones too; no SQL is built from strings."""

from __future__ import annotations

import ast
import asyncio
import csv
import io
import ipaddress
import json
import re
import select
import socket
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from imail.kit.csv_export import safe_cell
from imail.models.sending import Message
from imail.webhooks.urls import AddressGuard, pinned_client
from imail.workers.webhooks import GUARD_KEY
from tests.fixtures.api_servers import api_servers, closed_port
from tests.fixtures.factories import bearer, make_workspace
from tests.sending.conftest import freeze_api_clock
from tests.webhooks.conftest import create_endpoint, deliveries, drive, emit, receiver, worker_context  # noqa: F401
from tests.webhooks.test_router import strict_client  # noqa: F401

SRC = Path(__file__).resolve().parents[2] / "src" / "imail"

# --- SSRF ---------------------------------------------------------------------------------------------------

PRIVATE_TARGETS = [
    "http://127.0.0.1/hook",
    "http://127.1/hook",  # short form of 127.0.0.1
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/hook",  # … and as hex
    "http://0.0.0.0:8080/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.9/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://localhost:8000/hook",
    "http://admin.localhost/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
]


def loopback_name() -> str:
    """A host name (not an IP literal, not `localhost`) whose DNS answer is this machine: its own host
    name."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip(f"this machine's host name {name!r} does not resolve")
    if not addresses or any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip(f"this machine's host name {name!r} resolves to a public address")
    return name


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
async def test_webhook_targets_in_private_ranges_are_refused(strict_client, workspace, url):  # noqa: F811
    response = await strict_client.post(
        "/v1/webhooks", headers=workspace.headers(), json={"url": url, "events": ["*"]}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "url"
    assert "private" in response.json()["error"]["message"]


async def test_a_name_whose_dns_answer_is_private_is_refused_on_create(strict_client, workspace):  # noqa: F811
    name = loopback_name()
    response = await strict_client.post(
        "/v1/webhooks", headers=workspace.headers(), json={"url": f"http://{name}:8080/hook", "events": ["*"]}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "url" and "private" in error["message"] and name in error["message"]


async def test_a_name_whose_dns_answer_is_private_is_refused_at_delivery(
    client,
    workspace,
    database,
    receiver,
    worker_context,  # noqa: F811
):
    """Registered while allowed (or while the name pointed elsewhere): the check runs again before each
    send."""
    name = loopback_name()
    await create_endpoint(client, workspace.headers(), f"http://{name}:{receiver.port}/hook")
    await emit(database, workspace.workspace_id)
    await drive(worker_context(webhooks_allow_private=False), lambda: _attempted(database))
    assert receiver.requests == []
    [row] = await deliveries(database)
    assert row.status == "pending" and "private" in row.last_error and row.last_status_code is None


async def test_the_address_checked_is_the_address_connected_to(receiver):  # noqa: F811
    """DNS rebinding: a name can answer a public address to a check and a private one to the connection made
    after it. The webhook client resolves once, at connect time, checks that answer and dials it."""
    name = loopback_name()
    url = f"http://{name}:{receiver.port}/hook"
    async with pinned_client() as http:
        with pytest.raises(httpx.ConnectError, match="blocked"):
            await http.post(url, content=b"{}")
    assert receiver.requests == []

    # Allowed addresses are dialled as resolved, and the request still names the host it was made for.
    async with pinned_client(allowed=lambda address: ipaddress.ip_address(address).is_loopback) as http:
        response = await http.post(url, content=b"{}")
    assert response.status_code == 200
    assert [r.headers["host"] for r in receiver.requests] == [f"{name}:{receiver.port}"]


async def test_a_send_whose_check_was_fooled_still_never_connects(
    client,
    workspace,
    database,
    receiver,
    worker_context,  # noqa: F811
):
    class FooledGuard(AddressGuard):
        async def blocked(self, url: str) -> str | None:
            return None  # as if the name had answered a public address to the check

    name = loopback_name()
    await create_endpoint(client, workspace.headers(), f"http://{name}:{receiver.port}/hook")
    await emit(database, workspace.workspace_id)
    context = worker_context(webhooks_allow_private=False)
    context.extra[GUARD_KEY] = FooledGuard()
    await drive(context, lambda: _attempted(database))
    assert receiver.requests == []
    [row] = await deliveries(database)
    assert row.status == "pending" and "blocked" in row.last_error and row.last_status_code is None


async def test_a_redirect_towards_a_private_target_is_not_followed(
    client,
    workspace,
    database,
    receiver,
    worker_context,
    app,
):
    from tests.fixtures.webhook_receiver import Reply

    receiver.handler = lambda request, nth: Reply(
        302, {"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    await drive(worker_context(), lambda: _attempted(database))
    [row] = await deliveries(database)
    # A 3xx is a failed attempt (retried later, to the same URL), never a hop elsewhere.
    assert (row.status, row.last_status_code) == (
        "pending",
        302,
    ) and "redirects are not followed" in row.last_error
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert app.state.http.follow_redirects is False  # the process-wide client the workers share


async def _attempted(database) -> bool:
    return all(r.attempts > 0 for r in await deliveries(database))


# --- tracking and unsubscribe tokens ---------------------------------------------------------------------

TRACKED_STEP = {
    "subject": "Hi {{first_name}}",
    "body": '<p>See <a href="https://acme.io/demo">the demo</a></p>',
}


def tokens_of(data: bytes) -> dict[str, str]:
    msg = message_from_bytes(data, policy=default)
    html = msg.get_body(("html",)).get_content()
    return {
        "unsubscribe": re.search(r"<https://t\.acme\.test/u/([^>]+)>", msg["List-Unsubscribe"]).group(1),
        "open": re.search(r"url\('https://t\.acme\.test/t/o/([^']+)\.gif'\)", html).group(1),
        "click": re.search(r'href="https://t\.acme\.test/t/c/([^"]+)"', html).group(1),
    }


async def test_tokens_cannot_be_forged_or_moved_onto_another_lead(
    outreach, mailbox, sink, client, clock, monkeypatch
):
    freeze_api_clock(monkeypatch, clock)
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([TRACKED_STEP])
    ana = await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana")
    bob = await outreach.lead(campaign["id"], "bob@example.org", first_name="Bob")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 2
    by_recipient = {m.envelope_to[0]: tokens_of(m.data) for m in sink.messages}
    a, b = by_recipient["ana@example.org"], by_recipient["bob@example.org"]

    def splice(payload_of: str, signature_of: str) -> str:
        return payload_of.split(".")[0] + "." + signature_of.split(".")[1]

    def flip(token: str) -> str:
        """One signature character changed (not the last: its low bits are base64 padding)."""
        at = len(token) - 5
        return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]

    refused = [
        splice(b["unsubscribe"], a["unsubscribe"]),  # Bob's message under Ana's signature
        splice(a["unsubscribe"], b["unsubscribe"]),
        flip(a["unsubscribe"]),
        a["open"],  # a token minted for another purpose
        a["click"],
        a["unsubscribe"].split(".")[0],  # no signature at all
        "e30." + a["unsubscribe"].split(".")[1],
    ]
    for token in refused:
        assert (await client.post(f"/u/{token}")).status_code == 404, token
        assert (await client.get(f"/u/{token}")).status_code == 404, token
    for token in (a["unsubscribe"], flip(a["open"]), splice(b["open"], a["open"])):
        await client.get(f"/t/o/{token}.gif")  # the pixel always answers an image; only the record matters
    assert (await client.get(f"/t/c/{splice(b['click'], a['click'])}")).status_code == 404
    for event_type in ("lead.unsubscribed", "email.clicked", "email.opened"):
        assert await outreach.events(event_type) == [], event_type

    # Ana's own token unsubscribes Ana, however often it is replayed, and never Bob.
    for _ in range(2):
        assert (await client.post(f"/u/{a['unsubscribe']}")).status_code == 200
    assert (await outreach.lead_row(ana["id"])).status == "unsubscribed"
    assert (await outreach.lead_row(bob["id"])).status != "unsubscribed"
    suppressed = (await client.get("/v1/suppressions", headers=outreach.headers)).json()["data"]
    assert [s["value"] for s in suppressed] == ["ana@example.org"]
    [event] = await outreach.events("lead.unsubscribed")
    assert event.data["lead_id"] == ana["id"]
    [message] = await outreach.rows(Message, Message.lead_id == bob["id"])
    assert message.status == "sent"


# --- CSV ----------------------------------------------------------------------------------------------------

# OWASP CSV injection: cells starting with these run as formulas in Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_csv_cells_that_would_run_as_formulas_are_neutralised(start):
    for tail in ("1+1", 'HYPERLINK("http://evil.example","x")', "cmd|' /C calc'!A0", ""):
        cell = safe_cell(start + tail)
        assert cell == "'" + start + tail
        assert not cell.startswith(FORMULA_STARTS)
    assert safe_cell("cmp_01") == "cmp_01" and safe_cell(0) == "0" and safe_cell(None) == ""


async def test_analytics_csv_export_has_no_formula_cells(client, workspace):
    for path in ("/v1/analytics/workspace", "/v1/analytics/funnel"):
        response = await client.get(path, headers=workspace.headers(), params={"format": "csv"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0][0] == "day" and len(rows) > 1
        assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]


def test_every_csv_writer_in_the_code_neutralises_its_cells():
    """Any CSV export (today: analytics) must pass its cells through safe_cell."""
    writers = [p for p in SRC.rglob("*.py") if re.search(r"csv\.(writer|DictWriter)\(", p.read_text())]
    assert writers, "no CSV writer found: this guard would check nothing"
    for path in writers:
        assert "safe_cell(" in path.read_text(), f"{path.relative_to(SRC)} writes CSV without safe_cell"


# --- API keys -----------------------------------------------------------------------------------------------


async def test_keys_are_stored_only_as_hashes(database, workspace):
    async with database.engine.connect() as conn:
        rows = [dict(r._mapping) for r in (await conn.execute(text("SELECT * FROM api_keys")))]
    assert len(rows) == 2
    stored = json.dumps(rows, default=str)
    for key in (workspace.live_key, workspace.test_key):
        secret_part = key.split("_", 2)[2]
        assert secret_part not in stored and secret_part[:12] not in stored


def _secret_comparisons(tree: ast.AST) -> list[str]:
    """`==` / `!=` in Python between secret values (a token, secret, digest, key hash or signature):
    timing-unsafe. SQL expressions (`Model.column == bindparam(…)`, `table.c.…`) run in the database and
    lengths are public."""
    suspicious = re.compile(r"token|secret|digest|key_hash|signature", re.IGNORECASE)
    sql_or_public = re.compile(r"bindparam\(|^len\(|^[A-Z]\w*\.\w+$|\.c\.")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            operands = [ast.unparse(o) for o in (node.left, *node.comparators)]
            if any(o == "None" or sql_or_public.search(o) for o in operands):
                continue
            if any(suspicious.search(o) for o in operands):
                found.append(ast.unparse(node))
    return found


# Where a secret that came from outside is checked: API keys, signed links and OAuth state, webhook
# signatures, the metrics token.
SECRET_CHECKS = (
    "auth",
    "kit",
    "tracking",
    "webhooks/signing.py",
    "analytics/prometheus.py",
    "inboxes/oauth.py",
)


def test_secrets_are_compared_in_constant_time():
    """Keys are found by their hash (an index lookup), then compared with hmac.compare_digest, as are tracking
    and webhook signatures and the metrics token; no plain == on secret material anywhere in the code."""
    assert _secret_comparisons(ast.parse("if row.key_hash == digest: pass")), "the detector itself must work"
    offenders = {}
    paths = [
        p
        for name in SECRET_CHECKS
        for p in ([SRC / name] if name.endswith(".py") else (SRC / name).rglob("*.py"))
    ]
    assert all(p.exists() for p in paths) and len(paths) > 10
    for path in paths:
        if found := _secret_comparisons(ast.parse(path.read_text())):
            offenders[str(path.relative_to(SRC))] = found
    assert offenders == {}
    auth = "\n".join(p.read_text() for p in (SRC / "auth").glob("*.py"))
    assert "compare_digest(" in auth and "hash_key(" in auth


async def test_keys_never_reach_the_logs_and_bodies_are_capped_on_the_wire(postgres_url, database):
    """A real `imail serve` at DEBUG with JSON logs (and a Redis that is down, so it has warnings to log):
    valid, unknown, revoked and malformed keys in every place a client might put one; then oversized bodies,
    declared and chunked."""
    ws = await make_workspace(database, "surge", "Logs")
    other = await make_workspace(database, "surge", "Revoked")
    env = {
        "IMAIL_DATABASE_URL": postgres_url,
        "IMAIL_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
        "IMAIL_LOG_LEVEL": "DEBUG",
        "IMAIL_LOG_JSON": "true",
        "IMAIL_MAX_BODY_BYTES": "4096",
    }
    unknown = ws.live_key[:-6] + "ZZZZZZ"
    with api_servers(1, env) as [server]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            keys = await http.get("/v1/keys", headers=bearer(other.live_key))
            assert keys.status_code == 200
            live_id = next(k["id"] for k in keys.json()["data"] if k["livemode"])
            revoke = await http.delete(f"/v1/keys/{live_id}", headers=bearer(other.live_key))
            assert revoke.status_code == 200, revoke.text
            attempts = [
                ("GET", "/v1/campaigns", bearer(ws.live_key), None),
                ("GET", "/v1/campaigns", bearer(ws.test_key), None),
                ("GET", "/v1/campaigns", bearer(unknown), None),
                ("GET", "/v1/campaigns", bearer(other.live_key), None),  # revoked
                ("GET", "/v1/campaigns", {"Authorization": ws.live_key}, None),  # no scheme
                ("GET", "/v1/campaigns", {"Authorization": f"Basic {ws.live_key}"}, None),
                ("GET", f"/v1/campaigns?api_key={ws.live_key}", {}, None),
                ("GET", f"/v1/no-such-route/{ws.live_key}", bearer(ws.live_key), None),
                (
                    "POST",
                    "/v1/campaigns",
                    bearer(ws.live_key),
                    {"name": ws.live_key, "inbox_ids": [ws.live_key]},
                ),
                (
                    "POST",
                    "/v1/webhooks",
                    bearer(ws.live_key),
                    {"url": f"http://127.0.0.1/{ws.live_key}", "events": ["*"]},
                ),
            ]
            statuses = []
            for method, path, headers, body in attempts:
                response = await http.request(method, path, headers=headers, json=body)
                statuses.append(response.status_code)
                assert response.status_code < 500, response.text
            assert statuses[:4] == [200, 200, 401, 401] and statuses[4:6] == [401, 401]

            declared = await http.post(
                "/v1/suppressions",
                headers=bearer(ws.live_key),
                content=b'{"email": "' + b"a" * 5000 + b'@x.io"}',
            )
            assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"
            chunked = await asyncio.to_thread(_post_chunked, server.port, ws.live_key, 64, 1024)
            assert chunked.startswith("HTTP/1.1 413"), chunked[:300]
            assert '"payload_too_large"' in chunked
            small = await asyncio.to_thread(
                _post_chunked, server.port, ws.live_key, 1, 40, b'{"email": "ok@x.io"}'
            )
            assert small.startswith("HTTP/1.1 201"), small[:300]
        log = server.log_tail(10**6)

    lines = [line for line in log.splitlines() if line.strip()]
    assert any("rate limiter falling back" in line for line in lines), (
        "nothing was logged: this test checks nothing"
    )
    for key in (ws.live_key, ws.test_key, unknown, other.live_key, other.test_key):
        secret_part = key.split("_", 2)[2]
        assert secret_part[:16] not in log, f"key material in the log: {secret_part[:6]}…"
    async with database.transaction() as session:
        stored = (
            (
                await session.execute(
                    text("SELECT value FROM suppressions WHERE workspace_id = :w"), {"w": ws.workspace_id}
                )
            )
            .scalars()
            .all()
        )
    assert stored == ["ok@x.io"]  # the refused bodies wrote nothing


def _post_chunked(port: int, key: str, chunks: int, size: int, body: bytes | None = None) -> str:
    """POST /v1/suppressions with `Transfer-Encoding: chunked` (no Content-Length), on a raw socket."""
    payload = body if body is not None else b'{"email": "' + b"a" * (chunks * size) + b'@x.io"}'
    head = (
        f"POST /v1/suppressions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        pieces = [payload[start : start + size] for start in range(0, len(payload), size)]
        for piece in [*pieces, b""]:
            # Stop sending once the server has answered (413 before the end): writing on would only reset it.
            if select.select([sock], [], [], 0.01)[0]:
                break
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


async def test_bodies_over_the_cap_are_refused_in_process(database_url, database, workspace):
    """The same cap through ASGI: declared too large, streamed too large (no Content-Length), and just under
    it."""
    from imail.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, max_body_bytes=2048))

    async def stream(total: int):
        body = b'{"email": "' + b"b" * total + b'@x.io"}'
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://imail.test") as http,
    ):
        headers = workspace.headers()
        too_long = await http.post("/v1/suppressions", headers=headers, content=stream(4000))
        assert too_long.status_code == 413, too_long.text
        assert too_long.json()["error"]["code"] == "payload_too_large"
        fits = await http.post("/v1/suppressions", headers=headers, content=stream(10))
        assert fits.status_code == 201, fits.text
        listed = await http.get("/v1/suppressions", headers=headers)
    assert [s["value"] for s in listed.json()["data"]] == ["b" * 10 + "@x.io"]


# --- SQL ----------------------------------------------------------------------------------------------------

SQL_SINKS = {
    "text",
    "literal_column",
    "execute",
    "exec_driver_sql",
    "executemany",
    "fetch",
    "fetchrow",
    "fetchval",
}


def _built_from_strings(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return not (isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("format", "join")
    ):
        return True
    return False


def sql_built_from_strings(source: str) -> list[str]:
    """Calls that hand SQL text made by formatting, concatenation or joining to a driver or to text(),
    directly or through a variable assigned such a string in the same module."""
    tree = ast.parse(source)
    built_names = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _built_from_strings(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        )
        first = node.args[0]
        if name in SQL_SINKS and (
            _built_from_strings(first) or (isinstance(first, ast.Name) and first.id in built_names)
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_no_sql_is_built_from_strings():
    bad = "q = f\"SELECT * FROM leads WHERE email = '{email}'\"\nawait session.execute(text(q))\n"
    assert sql_built_from_strings(bad) and sql_built_from_strings(
        "conn.execute('DELETE FROM t WHERE id=%s' % i)"
    )
    offenders = {
        str(path.relative_to(SRC)): found
        for path in sorted(SRC.rglob("*.py"))
        if (found := sql_built_from_strings(path.read_text()))
    }
    assert offenders == {}
