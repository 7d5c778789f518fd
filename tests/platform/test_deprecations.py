"""The deprecation machinery, proven with a snapshot that exists only in these tests: it deprecates a route, a
request field and an event type. Responses that use them carry Deprecation/Sunset/Link; openapi.json marks
them; uses are counted per key; from six months before the sunset each workspace that used them gets one
warning a month (an email through the operator's SMTP server, and an `api.deprecation_warning` event)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import select

from imail.deprecations.notices import send_deprecation_warnings
from imail.errors import InvalidField
from imail.kit import versions
from imail.kit.versions.base import Deprecation, VersionChange
from imail.models import Event
from imail.models.deprecation import DeprecationUsage
from imail.workspaces.service import _contact, set_contact
from tests.conftest import make_settings
from tests.fixtures.factories import make_workspace
from tests.fixtures.smtp import smtp_server, tls_cert  # noqa: F401

DEPRECATED_ON = date(2026, 12, 20)
SUNSET = date(2027, 12, 31)
TEST_ONLY = VersionChange(
    DEPRECATED_ON,
    "Test-only snapshot: deprecates a route, a field and an event type.",
    deprecations=(
        Deprecation(
            "route", "GET /v1/suppressions", SUNSET, "List suppressions with GET /v1/suppressions/v2."
        ),
        Deprecation("field", "POST /v1/campaigns daily_limit", SUNSET, "Set limits per inbox instead."),
        Deprecation("event", "email.opened", SUNSET, "Subscribe to email.clicked instead."),
    ),
)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def test_only_snapshot():
    with versions.installed(TEST_ONLY) as registry:
        yield registry


@pytest.fixture
def clock(monkeypatch) -> Clock:
    driven = Clock(datetime(2026, 12, 21, 10, tzinfo=UTC))
    monkeypatch.setattr("imail.deprecations.usage.utcnow", driven)
    return driven


@pytest.fixture
def settings(database_url, smtp_server, tls_cert):  # noqa: F811
    return make_settings(
        database_url,
        system_smtp_server=f"{smtp_server.host}:{smtp_server.port}/starttls",
        system_smtp_username="ana@example.com",
        system_smtp_password="smtp-secret",
        system_mail_from="notices@operator.test",
        mail_ca_file=str(tls_cert.ca_file),
        public_url="https://imail.operator.test",
    )


CAMPAIGN = {"name": "Q1", "inbox_ids": [], "steps": [{"subject": "Hi", "body": "Hello"}]}


def assert_deprecation_headers(response) -> None:
    assert response.headers["deprecation"] == f"@{int(datetime(2026, 12, 20, tzinfo=UTC).timestamp())}"
    assert parsedate_to_datetime(response.headers["sunset"]) == datetime(2027, 12, 31, tzinfo=UTC)
    link = response.headers["link"]
    assert '<https://imail.operator.test/changelog#2026-12-20>; rel="deprecation"' in link
    assert 'rel="sunset"' in link


async def test_a_deprecated_route_answers_with_deprecation_and_sunset(client, workspace, clock):
    response = await client.get("/v1/suppressions", headers=workspace.headers())
    assert response.status_code == 200
    assert_deprecation_headers(response)
    fresh = await client.get("/v1/campaigns", headers=workspace.headers())
    assert "deprecation" not in fresh.headers and "sunset" not in fresh.headers


async def test_a_deprecated_field_marks_only_requests_that_send_it(client, workspace, clock):
    with_field = await client.post(
        "/v1/campaigns", headers=workspace.headers(), json={**CAMPAIGN, "daily_limit": 50}
    )
    assert with_field.status_code == 201, with_field.text
    assert_deprecation_headers(with_field)
    without = await client.post("/v1/campaigns", headers=workspace.headers(), json=CAMPAIGN)
    assert without.status_code == 201 and "deprecation" not in without.headers


async def test_subscribing_to_a_deprecated_event_is_marked(client, workspace, clock):
    response = await client.post(
        "/v1/webhooks",
        headers=workspace.headers(),
        json={"url": "https://hooks.example.org/imail", "events": ["email.opened"]},
    )
    assert response.status_code == 201, response.text
    assert_deprecation_headers(response)
    other = await client.post(
        "/v1/webhooks",
        headers=workspace.headers(),
        json={"url": "https://hooks.example.org/imail", "events": ["email.clicked"]},
    )
    assert other.status_code == 201 and "deprecation" not in other.headers


async def test_openapi_marks_what_is_deprecated(client):
    document = (await client.get("/openapi.json")).json()
    assert document["paths"]["/v1/suppressions"]["get"]["deprecated"] is True
    assert "2027-12-31" in document["paths"]["/v1/suppressions"]["get"]["description"]
    assert "deprecated" not in document["paths"]["/v1/suppressions"]["post"]
    body_ref = document["paths"]["/v1/campaigns"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["$ref"]
    body = document["components"]["schemas"][body_ref.rpartition("/")[2]]
    assert body["properties"]["daily_limit"]["deprecated"] is True
    assert "deprecated" not in body["properties"]["name"]
    assert document["webhooks"]["email.opened"]["post"]["deprecated"] is True
    assert "deprecated" not in document["webhooks"]["email.clicked"]["post"]


async def test_the_shipped_document_deprecates_nothing(repo_root):
    import json

    document = json.loads((repo_root / "openapi.json").read_text())
    assert '"deprecated": true' not in json.dumps(document)
    assert versions.SHIPPED and all(not change.deprecations for change in versions.SHIPPED)


def test_a_sunset_under_twelve_months_is_refused():
    with pytest.raises(ValueError, match="12 months"):
        VersionChange(
            date(2027, 1, 1),
            "too soon",
            deprecations=(Deprecation("route", "GET /v1/keys", date(2027, 12, 31), "no"),),
        )


async def _usage(database) -> dict[tuple[str, str], int]:
    async with database.read() as session:
        rows = (await session.execute(select(DeprecationUsage))).scalars()
        return {(r.api_key_id, r.target): r.count for r in rows}


async def _key_id(client, headers) -> str:
    keys = (await client.get("/v1/keys", headers=headers)).json()["data"]
    return next(k["id"] for k in keys if k["name"] == "default live key")


async def test_uses_are_counted_per_key(client, database, workspace, other_workspace, clock):
    for _ in range(3):
        await client.get("/v1/suppressions", headers=workspace.headers())
    await client.get("/v1/suppressions", headers=other_workspace.headers())
    await client.post("/v1/campaigns", headers=workspace.headers(), json={**CAMPAIGN, "daily_limit": 10})
    await client.get("/v1/campaigns", headers=workspace.headers())  # not deprecated: not counted
    await client.get("/v1/suppressions")  # no key: nothing to count against (401)
    mine, theirs = (
        await _key_id(client, workspace.headers()),
        await _key_id(client, other_workspace.headers()),
    )
    assert await _usage(database) == {
        (mine, "GET /v1/suppressions"): 3,
        (theirs, "GET /v1/suppressions"): 1,
        (mine, "POST /v1/campaigns daily_limit"): 1,
    }


async def _warnings(database, workspace_id: str) -> list[Event]:
    async with database.read() as session:
        stmt = select(Event).where(
            Event.type == "api.deprecation_warning", Event.workspace_id == workspace_id
        )
        return list((await session.execute(stmt.order_by(Event.id))).scalars())


async def test_monthly_warnings_from_six_months_before_the_sunset(
    client, database, settings, smtp_server, clock
):
    user = await make_workspace(database, "surge", "Initech")
    async with database.transaction() as session:
        await set_contact(session, user.workspace_id, "cto@initech.example")
    silent = await make_workspace(database, "surge", "Hooli")  # uses nothing deprecated
    for _ in range(4):
        await client.get("/v1/suppressions", headers=user.headers())
    await client.get("/v1/campaigns", headers=silent.headers())
    key_id = await _key_id(client, user.headers())

    too_early = datetime(2027, 6, 29, 12, tzinfo=UTC)  # the window opens on 2027-06-30, six months before
    assert await send_deprecation_warnings(database, settings, too_early) == 0
    assert smtp_server.messages == []

    opened = datetime(2027, 6, 30, 9, tzinfo=UTC)
    assert await send_deprecation_warnings(database, settings, opened) == 1
    [mail] = smtp_server.wait_for_messages(1)
    assert mail.envelope_to == ["cto@initech.example"] and mail.envelope_from == "notices@operator.test"
    text = mail.message.get_payload(decode=True).decode()
    assert "GET /v1/suppressions" in text and "2027-12-31" in text and "default live key" in text
    assert key_id in text and "4 calls" in text
    assert "https://imail.operator.test/changelog#2026-12-20" in text
    [event] = await _warnings(database, user.workspace_id)
    assert event.livemode is True
    assert event.data["target"] == "GET /v1/suppressions" and event.data["sunset"] == "2027-12-31"
    assert [(k["key_id"], k["count"]) for k in event.data["keys"]] == [(key_id, 4)]
    assert await _warnings(database, silent.workspace_id) == []

    # Monthly: not again within the month, again a month later, never after the sunset.
    assert await send_deprecation_warnings(database, settings, opened + timedelta(days=20)) == 0
    assert await send_deprecation_warnings(database, settings, datetime(2027, 7, 30, 10, tzinfo=UTC)) == 1
    assert len(smtp_server.wait_for_messages(2)) == 2
    assert await send_deprecation_warnings(database, settings, datetime(2028, 1, 5, tzinfo=UTC)) == 0
    assert len(smtp_server.messages) == 2 and len(await _warnings(database, user.workspace_id)) == 2


async def test_without_a_contact_address_the_event_still_goes(client, database, settings, smtp_server, clock):  # noqa: F811
    user = await make_workspace(database, "surge", "Umbrella")
    await client.get("/v1/suppressions", headers=user.headers())
    assert await send_deprecation_warnings(database, settings, datetime(2027, 7, 1, tzinfo=UTC)) == 1
    assert smtp_server.messages == []
    assert len(await _warnings(database, user.workspace_id)) == 1


async def test_an_unreachable_mail_server_retries_next_round(client, database, settings, smtp_server, clock):  # noqa: F811
    user = await make_workspace(database, "surge", "Stark")
    async with database.transaction() as session:
        await set_contact(session, user.workspace_id, "ops@stark.example")
    await client.get("/v1/suppressions", headers=user.headers())
    smtp_server.stop()
    assert await send_deprecation_warnings(database, settings, datetime(2027, 7, 1, tzinfo=UTC)) == 0
    assert await _warnings(database, user.workspace_id) == []  # nothing recorded: tried again next round
    smtp_server.start()
    assert await send_deprecation_warnings(database, settings, datetime(2027, 7, 1, 1, tzinfo=UTC)) == 1
    assert smtp_server.wait_for_messages(1)[0].envelope_to == ["ops@stark.example"]


async def test_changelog_page_and_data_come_from_the_registry(client):
    data = (await client.get("/v1/changelog")).json()  # public: no key
    assert data["latest"] == "2026-12-20"
    assert [e["version"] for e in data["data"]] == [c.date.isoformat() for c in reversed(versions.CHANGES)]
    first = data["data"][0]
    assert first["deprecations"][0] == {
        "kind": "route",
        "target": "GET /v1/suppressions",
        "sunset": "2027-12-31",
        "note": "List suppressions with GET /v1/suppressions/v2.",
    }
    bulk = next(e for e in data["data"] if e["version"] == "2026-04-22")
    assert bulk["endpoints_added"] == ["POST /v1/leads/bulk"]
    page = await client.get("/changelog")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for change in versions.CHANGES:
        assert f'id="{change.date.isoformat()}"' in page.text
    assert "GET /v1/suppressions" in page.text and "2027-12-31" in page.text


def test_workspace_contact_is_validated():
    assert _contact(" CTO@Initech.example ") == "CTO@initech.example"
    assert _contact("") is None
    with pytest.raises(InvalidField):
        _contact("not an address")
