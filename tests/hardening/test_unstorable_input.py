"""Bad input is a 400 in the contract's shape, never a 500: text no column can store (a NUL, a lone surrogate)
wherever text enters (JSON, query, path, multipart fields, CSV cells), and input nested deep enough to exhaust
a recursive parser (spintax, a CSV import's mapping, a JSON body). Each refusal writes nothing. The multipart
and CSV paths are also fuzzed (hypothesis): whatever the bytes, never a 5xx."""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imail.db import Database
from imail.main import create_app
from tests.conftest import _empty_tables, make_settings
from tests.fixtures.factories import make_workspace
from tests.fixtures.outreach import assert_error, campaign_body, counts, create_campaign, make_inbox

SURROGATE_ESCAPE = "\\ud800"  # as a JSON client writes it: the parsed string holds U+D800 alone


def raw_json(headers: dict[str, str], text: str) -> dict:
    """Request arguments for a JSON body written by hand (escapes as a client sent them)."""
    return {"content": text.encode(), "headers": {**headers, "Content-Type": "application/json"}}


@pytest.fixture
async def inbox_id(database, workspace) -> str:
    return await make_inbox(database, workspace.workspace_id)


@pytest.fixture
async def campaign(client, workspace, inbox_id) -> dict:
    return await create_campaign(client, workspace.headers(), [inbox_id])


async def upload(client, headers, data: dict, content: bytes, filename: str = "leads.csv") -> httpx.Response:
    return await client.post(
        "/v1/leads/import", headers=headers, data=data, files={"file": (filename, content, "text/csv")}
    )


# --- text that cannot be stored -----------------------------------------------------------------------------


async def test_a_lone_surrogate_in_a_campaign_name_is_400(client, database, workspace, inbox_id):
    before = await counts(database)
    body = json.dumps(campaign_body([inbox_id], name="Q2")).replace('"Q2"', f'"Q2 {SURROGATE_ESCAPE}"')
    response = await client.post("/v1/campaigns", **raw_json(workspace.headers(), body))
    error = assert_error(response, 400, "name", "invalid_field")
    assert "surrogate" in error["message"]
    # A surrogate pair is one ordinary character (an emoji), and is stored.
    paired = body.replace(SURROGATE_ESCAPE, "\\ud83d\\ude00")
    created = await client.post("/v1/campaigns", **raw_json(workspace.headers(), paired))
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Q2 \U0001f600"
    assert (await counts(database))["campaigns"] == before["campaigns"] + 1


async def test_a_lone_surrogate_in_a_custom_variable_is_400(client, database, workspace, campaign):
    before = await counts(database)
    single = json.dumps(
        {"campaign_id": campaign["id"], "email": "ana@example.com", "custom_variables": {"city": "LYON"}}
    ).replace("LYON", "Ly" + "\\udc00" + "on")
    response = await client.post("/v1/leads", **raw_json(workspace.headers(), single))
    assert_error(response, 400, "custom_variables.city", "invalid_field")
    bulk = json.dumps(
        {
            "campaign_id": campaign["id"],
            "leads": [
                {"email": "bo@example.com"},
                {"email": "cy@example.com", "custom_variables": {"k": "V"}},
            ],
        }
    )
    response = await client.post(
        "/v1/leads/bulk", **raw_json(workspace.headers(), bulk.replace('"V"', f'"{SURROGATE_ESCAPE}"'))
    )
    assert_error(response, 400, "leads[1].custom_variables.k", "invalid_field")
    patched = await client.patch(
        f"/v1/campaigns/{campaign['id']}",
        **raw_json(workspace.headers(), f'{{"name": "x{SURROGATE_ESCAPE}"}}'),
    )
    assert_error(patched, 400, "name", "invalid_field")
    assert await counts(database) == before


async def test_unstorable_text_in_the_url_is_400(client, workspace, campaign):
    for path, field in [
        (f"/v1/leads?campaign_id={campaign['id']}%00", "campaign_id"),
        ("/v1/campaigns?cursor=a%00b", "cursor"),
        ("/v1/campaigns/cmp_%00x", "path"),
    ]:
        assert_error(
            await client.get(path, headers=workspace.headers()), 400, field, "invalid_field", case=path
        )


async def test_a_nul_in_a_csv_cell_is_400_and_writes_nothing(client, database, workspace, campaign):
    before = await counts(database)
    for content in (
        b"email,first_name\nana@example.com,A\x00na\n",  # a mapped column
        b"email,notes\nana@example.com,ok\nbo@example.com,x\x00\n",  # an ignored one, on a later row
        b"email,first\x00name\nana@example.com,Ana\n",
    ):  # the header row
        response = await upload(client, workspace.headers(), {"campaign_id": campaign["id"]}, content)
        error = assert_error(response, 400, "file", "invalid_field", case=content)
        assert "NUL" in error["message"] and "line " in error["message"]
    assert await counts(database) == before


async def test_a_nul_in_a_multipart_field_is_400(client, database, workspace, campaign):
    before = await counts(database)
    csv_file = b"email,first_name\nana@example.com,Ana\n"
    cases = [
        ({"campaign_id": campaign["id"] + "\x00"}, "campaign_id"),
        ({"campaign_id": campaign["id"], "mapping": '{"email": "email\x00"}'}, "mapping"),
        ({"campaign_id": campaign["id"], "delimiter": "\x00"}, "delimiter"),
    ]
    for data, field in cases:
        assert_error(
            await upload(client, workspace.headers(), data, csv_file), 400, field, "invalid_field", case=data
        )
    assert await counts(database) == before


# --- depth --------------------------------------------------------------------------------------------------


async def test_spintax_nested_hundreds_deep_is_400(client, database, workspace, inbox_id, campaign):
    before = await counts(database)
    deep = "{Hi|" * 400 + "Hello" + "}" * 400  # {Hi|{Hi|{Hi|…Hello}}}
    response = await client.post(
        "/v1/campaigns",
        headers=workspace.headers(),
        json=campaign_body([inbox_id], steps=[{"subject": "s", "body": deep}]),
    )
    error = assert_error(response, 400, "steps[0].body", "invalid_field")
    assert "nest" in error["message"]
    response = await client.patch(
        f"/v1/campaigns/{campaign['id']}",
        headers=workspace.headers(),
        json={"steps": [{"subject": deep, "body": "b"}]},
    )
    assert_error(response, 400, "steps[0].subject", "invalid_field")
    # Ordinary nesting (spintax inside spintax, CSS blocks in an HTML body) still saves.
    fine = "{Hi|{Hello|Hey} there} <style>@media print{p{margin:0}}</style>"
    ok = await client.post(
        "/v1/campaigns",
        headers=workspace.headers(),
        json=campaign_body([inbox_id], steps=[{"subject": "s", "body": fine}]),
    )
    assert ok.status_code == 201, ok.text
    assert (await counts(database))["campaigns"] == before["campaigns"] + 1


async def test_a_csv_mapping_nested_thousands_deep_is_400(client, database, workspace, campaign):
    before = await counts(database)
    csv_file = b"email\nana@example.com\n"
    for mapping in (
        '{"email": ' + "[" * 5000 + "]" * 5000 + "}",  # past any parser's patience
        '{"email": ' + "[" * 900 + "]" * 900 + "}",  # parses, but is no column header
        '{"custom_variables": {"city": ' + "{" * 5000 + "}" * 5000 + "}}",
        "[" * 100_000,
    ):
        response = await upload(
            client, workspace.headers(), {"campaign_id": campaign["id"], "mapping": mapping}, csv_file
        )
        assert response.status_code == 400, response.text[:300]
        error = response.json()["error"]
        assert error["code"] == "invalid_field" and error["field"].startswith("mapping"), error
        assert len(response.content) < 2000  # a message, not a dump of the input
    assert await counts(database) == before


async def test_a_json_body_nested_deep_is_400(client, database, workspace):
    before = await counts(database)
    for body in (
        b'{"email": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"email": ' + b"[" * 900 + b'"x\\u0000"' + b"]" * 900 + b"}",  # with text the check must find
        b'{"email": ' + b"[" * 5000 + b'"x\\u0000"' + b"]" * 5000 + b"}",
    ):
        response = await client.post(
            "/v1/suppressions",
            headers={**workspace.headers(), "Content-Type": "application/json"},
            content=body,
        )
        assert response.status_code == 400, response.text[:300]
        assert response.json()["error"]["code"] in ("invalid_json", "invalid_field")
    assert await counts(database) == before


# --- property-based: the multipart and CSV paths never answer 5xx -------------------------------------------


class AppRunner:
    """The app with its lifespan on a private event loop, so hypothesis (which drives plain functions) can
    send it one request per example."""

    def __init__(self, database_url: str):
        self.loop = asyncio.new_event_loop()
        self.app = create_app(make_settings(database_url))
        self.database = Database(make_settings(database_url))
        self._lifespan = self.app.router.lifespan_context(self.app)
        self.run(self._lifespan.__aenter__())
        self.run(_empty_tables(self.database))
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://imail.test"
        )
        keys = self.run(make_workspace(self.database, "apex", "Fuzz", per_minute=1_000_000, burst=1_000_000))
        self.headers = keys.headers()
        inbox = self.run(make_inbox(self.database, keys.workspace_id))
        self.campaign_id = self.run(create_campaign(self.client, self.headers, [inbox]))["id"]

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self._lifespan.__aexit__(None, None, None))
        self.run(self.database.dispose())
        self.loop.close()


@pytest.fixture(scope="module")
def runner(database_url: str) -> Iterator[AppRunner]:
    app_runner = AppRunner(database_url)
    try:
        yield app_runner
    finally:
        app_runner.close()


def assert_structured(response: httpx.Response, case: object) -> None:
    assert response.status_code < 500, (case, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "request_id"} and body["error"]["code"], (case, body)


FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CSV_ALPHABET = st.sampled_from(
    list(string.ascii_letters[:6] + ',;|\t"\r\n \x00@.') + ["é", "\ufeff", "\u2028"]
)
header_rows = st.sampled_from(
    [b"email\n", b"email,first_name\n", b"email,first_name,city\n", b"Email;Company\n", b""]
)


# Rows that get past the address check, so what the other cells hold reaches the database.
valid_rows = st.lists(st.tuples(st.integers(0, 10**6), st.text(CSV_ALPHABET, max_size=30)), max_size=4).map(
    lambda rows: "".join(f"lead{n}@example.com,{cell}\n" for n, cell in rows)
)
deep_mappings = st.integers(1, 3000).map(lambda n: '{"email": ' + "[" * n + "]" * n + "}")


@FUZZ
@given(
    head=header_rows,
    text=st.one_of(st.text(CSV_ALPHABET, max_size=200), valid_rows),
    raw=st.binary(max_size=200),
    mapping=st.one_of(
        st.none(),
        st.text(max_size=60),
        deep_mappings,
        st.recursive(
            st.text(max_size=8) | st.integers() | st.none(),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["email", "first_name", "custom_variables", "city", "x"]),
                    inner,
                    max_size=3,
                )
            ),
            max_leaves=10,
        ).map(json.dumps),
    ),
    delimiter=st.one_of(st.none(), st.sampled_from([",", ";", "\\t", "|", "", "\x00", "ab"])),
)
def test_csv_imports_never_fail_with_a_5xx(runner, head, text, raw, mapping, delimiter):
    data = {"campaign_id": runner.campaign_id}
    if mapping is not None:
        data["mapping"] = mapping
    if delimiter is not None:
        data["delimiter"] = delimiter
    for content in (head + text.encode("utf-8", "surrogatepass"), head + raw):
        response = runner.run(upload(runner.client, runner.headers, data, content))
        assert_structured(response, (data, content))


@FUZZ
@given(
    fields=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4),
    filename=st.text(max_size=20),
    content_type=st.sampled_from(["text/csv", "application/octet-stream", "", "text/plain; charset=latin-1"]),
    body=st.binary(max_size=300),
    with_file=st.booleans(),
)
def test_multipart_forms_never_fail_with_a_5xx(runner, fields, filename, content_type, body, with_file):
    files = {"file": (filename or "f.csv", body, content_type or None)} if with_file else None
    data = {
        name.encode("utf-8", "surrogatepass").decode("latin-1"): value.encode(
            "utf-8", "surrogatepass"
        ).decode("latin-1")
        for name, value in fields.items()
    }
    response = runner.run(
        runner.client.post("/v1/leads/import", headers=runner.headers, data=data, files=files)
    )
    assert_structured(response, (fields, filename, body[:40]))


@FUZZ
@given(body=st.binary(max_size=400), boundary=st.sampled_from([b"XyZ", b"", b"a" * 80]))
def test_raw_multipart_bodies_never_fail_with_a_5xx(runner, body, boundary):
    headers = {**runner.headers, "Content-Type": "multipart/form-data; boundary=" + boundary.decode()}
    framed = (
        b'--XyZ\r\nContent-Disposition: form-data; name="campaign_id"\r\n\r\n' + body + b"\r\n--XyZ--\r\n"
    )
    for content in (body, framed):
        response = runner.run(runner.client.post("/v1/leads/import", headers=headers, content=content))
        assert_structured(response, content[:80])
