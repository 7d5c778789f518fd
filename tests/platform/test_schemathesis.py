"""Property-based API testing: schemathesis reads the committed openapi.json and sends generated requests,
valid and invalid, for every operation to a real `imail serve` on a loopback port, authenticated with a live
key of an apex workspace (so rate limits stay out of the way). Each response must be a non-5xx whose status
is documented for the operation, with the documented content type and a body matching its schema.

Examples are bounded and derandomized with a fixed seed, so a run is reproducible and takes a few minutes at
most; a failure prints the request to replay with curl.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imail.db import Database
from tests.conftest import make_settings
from tests.fixtures.api_servers import api_servers
from tests.fixtures.factories import bearer, make_workspace
from tests.fixtures.outreach import campaign_body, make_inbox

pytestmark = pytest.mark.slow

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.json"
SEED = 20261123
MAX_EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass(frozen=True)
class Target:
    base_url: str
    key: str
    ids: dict[str, str]  # path parameter name → an existing object's id, so operations get past the 404


async def _workspace(database_url: str) -> tuple[str, str, str]:
    database = Database(make_settings(database_url))
    try:
        keys = await make_workspace(database, "apex", "Fuzz", per_minute=1_000_000, burst=1_000_000)
        inbox_id = await make_inbox(database, keys.workspace_id, email="fuzz-sender@acme.test")
    finally:
        await database.dispose()
    return keys.workspace_id, keys.live_key, inbox_id


def _seed_objects(base_url: str, key: str, inbox_id: str) -> dict[str, str]:
    """One object of each kind, made through the API, whose ids the generated requests sometimes use."""
    with httpx.Client(base_url=base_url, headers=bearer(key), timeout=30.0) as http:

        def create(path: str, body: dict) -> str:
            response = http.post(path, json=body)
            assert response.status_code == 201, (path, response.text)
            return response.json()["id"]

        campaign_id = create("/v1/campaigns", campaign_body([inbox_id]))
        return {
            "inbox_id": inbox_id,
            "campaign_id": campaign_id,
            "lead_id": create("/v1/leads", {"campaign_id": campaign_id, "email": "ana@example.com"}),
            "suppression_id": create("/v1/suppressions", {"email": "blocked@example.com"}),
            "webhook_id": create("/v1/webhooks", {"url": "https://hooks.example.com/imail", "events": ["*"]}),
            "key_id": http.get("/v1/keys").json()["data"][0]["id"],
        }


@pytest.fixture(scope="module")
def target(database_url: str) -> Iterator[Target]:
    _, key, inbox_id = asyncio.run(_workspace(database_url))
    env = {
        "IMAIL_DATABASE_URL": database_url,
        # Generated webhook URLs name hosts that do not exist: skip resolving them (the SSRF rules have their
        # own tests), and bound the SMTP/IMAP logins that generated inbox settings attempt.
        "IMAIL_WEBHOOKS_ALLOW_PRIVATE": "1",
        "IMAIL_MAIL_TIMEOUT": "2",
    }
    with api_servers(1, env) as (server,):
        yield Target(server.base_url, key, _seed_objects(server.base_url, key, inbox_id))


schema = schemathesis.openapi.from_path(
    OPENAPI,
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "request-timeout": 30,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


def _use_existing_ids(case, ids: dict[str, str]) -> None:
    """About half the generated path ids (chosen by their value, so a run stays reproducible) are swapped for
    a real object's, so the operation's own logic runs, not only its 404."""
    for name, value in (case.path_parameters or {}).items():
        if name in ids and zlib.crc32(str(value).encode()) % 2 == 0:
            case.path_parameters[name] = ids[name]


@schema.parametrize()
def test_every_operation_conforms(case, target: Target) -> None:
    _use_existing_ids(case, target.ids)
    case.call_and_validate(base_url=target.base_url, headers=bearer(target.key), checks=CHECKS)
