"""openapi.json reads the same to every generator: what a client may leave out of a request is optional (its
default only described), what the server always sends in a success response is required, every component is
keyed by a readable name, and a schema used on both sides has one component per side. Generators that follow
`default` (openapi-typescript's defaults turn a defaulted property into a required one) then type requests
and responses as the server treats them; tests/platform/test_typescript_client.py compiles and runs one."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.fixtures.outreach import make_inbox

REF = "#/components/schemas/"
DEFAULT = re.compile(r"Default: `(.+?)`\.$")


@pytest.fixture
async def document(client) -> dict[str, Any]:
    return (await client.get("/openapi.json")).json()


def _components_under(node: Any, document: dict[str, Any], found: set[str] | None = None) -> set[str]:
    found = set() if found is None else found
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith(REF) and ref[len(REF) :] not in found:
            found.add(ref[len(REF) :])
            _components_under(document["components"]["schemas"][ref[len(REF) :]], document, found)
        for value in node.values():
            _components_under(value, document, found)
    elif isinstance(node, list):
        for item in node:
            _components_under(item, document, found)
    return found


def _sides(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Components reachable from request bodies, and from success responses and webhook payloads."""
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    requests = _components_under([op.get("requestBody") for op in operations], document)
    responses = _components_under(
        [r for op in operations for status, r in op["responses"].items() if status.startswith("2")]
        + [op["requestBody"] for ops in document["webhooks"].values() for op in ops.values()],
        document,
    )
    return requests, responses


def test_request_schemas_describe_defaults_instead_of_declaring_them(document):
    schemas = document["components"]["schemas"]
    requests, _ = _sides(document)
    assert {"CampaignCreate", "InboxCreate", "StepIn", "SendWindowIn", "DelayIn"} <= requests
    for name in requests:
        for prop_name, prop in schemas[name].get("properties", {}).items():
            assert "default" not in prop, (name, prop_name)
    create = schemas["CampaignCreate"]
    for flag in ("track_opens", "track_clicks", "stop_on_reply"):
        assert flag not in create["required"]
        assert DEFAULT.search(create["properties"][flag]["description"]).group(1) == "true"
    assert set(create["required"]) == {"name", "inbox_ids", "steps"}


def _nullable(prop: dict[str, Any]) -> bool:
    return {"type": "null"} in prop.get("anyOf", [])


def test_success_responses_require_what_is_always_sent(document):
    """A property that defaults to a value is always sent; only a nullable one without a default (null) may
    be left out of a body built by hand."""
    schemas = document["components"]["schemas"]
    _, responses = _sides(document)
    assert {"Campaign", "LeadList", "Pagination", "CampaignAnalytics", "Funnel", "EmailSent"} <= responses
    for name in responses:
        body = schemas[name]
        for prop_name, prop in body.get("properties", {}).items():
            if prop_name not in body.get("required", []):
                assert _nullable(prop) and "default" not in prop, (name, prop_name)
    assert {"object", "track_opens", "send_window"} <= set(schemas["Campaign"]["required"])
    assert "deleted" in schemas["LeadDeleted"]["required"] and "machine" in schemas["EmailOpened"]["required"]
    assert schemas["SendWindow"]["required"] == ["timezone", "days", "start", "end"]
    # Nullable stays nullable: required means present, maybe null.
    assert schemas["Pagination"]["properties"]["next_cursor"]["anyOf"] == [
        {"type": "string"},
        {"type": "null"},
    ]
    assert "next_cursor" in schemas["Pagination"]["required"]


def test_fields_the_server_may_leave_out_stay_optional(document):
    """An error's `field` is written only when the error names one; a bulk result's `line` only for
    imports."""
    schemas = document["components"]["schemas"]
    assert (
        "field" in schemas["ErrorDetail"]["properties"] and "field" not in schemas["ErrorDetail"]["required"]
    )
    assert (
        "line" in schemas["LeadRowResult"]["properties"]
        and "line" not in schemas["LeadRowResult"]["required"]
    )


def test_components_are_keyed_by_their_titles(document):
    schemas = document["components"]["schemas"]
    assert {name for name, body in schemas.items() if body.get("title", name) != name} == set()
    assert [name for name in schemas if not name.isidentifier() or "_" in name] == []
    assert document["paths"]["/v1/leads"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] == {"$ref": REF + "LeadList"}
    assert _components_under(document, document) == set(schemas)


def test_a_schema_on_both_sides_has_a_component_per_side(document):
    schemas = document["components"]["schemas"]
    requests, responses = _sides(document)
    window_in = schemas["CampaignCreate"]["properties"]["send_window"]["anyOf"][0]
    assert window_in == {"$ref": REF + "SendWindowIn"}
    assert schemas["Campaign"]["properties"]["send_window"] == {"$ref": REF + "SendWindow"}
    assert "required" not in schemas["SendWindowIn"] and schemas["SendWindowIn"]["title"] == "SendWindowIn"
    assert schemas["SendWindow"]["required"] == ["timezone", "days", "start", "end"]
    assert schemas["StepIn"]["properties"]["delay"] == {"$ref": REF + "DelayIn"}
    assert {"SendWindow", "Delay"} <= responses - requests and {
        "SendWindowIn",
        "DelayIn",
    } <= requests - responses
    # What is left on both sides reads the same either way: enums and objects without defaults.
    for name in requests & responses:
        assert not [p for p in schemas[name].get("properties", {}).values() if "default" in p], name


async def test_described_defaults_are_the_ones_the_server_applies(client, document, database, workspace):
    schemas = document["components"]["schemas"]
    inbox = await make_inbox(database, workspace.workspace_id)
    response = await client.post(
        "/v1/campaigns",
        headers=workspace.headers(),
        json={
            "name": "Defaults",
            "inbox_ids": [inbox],
            "steps": [{"subject": "Hi", "body": "<p>Hi</p>"}],
            "send_window": {"days": ["mon"]},
        },
    )
    assert response.status_code == 201, response.text
    campaign = response.json()

    def described(schema: str, prop: str) -> Any:
        return json.loads(DEFAULT.search(schemas[schema]["properties"][prop]["description"]).group(1))

    for flag in ("track_opens", "track_clicks", "stop_on_reply"):
        assert campaign[flag] is described("CampaignCreate", flag) is True
    for prop in ("timezone", "start", "end"):
        assert campaign["send_window"][prop] == described("SendWindowIn", prop)
    for prop in ("amount", "unit"):
        assert campaign["steps"][0]["delay"][prop] == described("DelayIn", prop)
