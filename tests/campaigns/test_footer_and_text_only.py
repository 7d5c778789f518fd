"""The workspace footer (GET/PATCH /v1/workspace), {{unsubscribe_url}}, `include_footer` and `text_only` on
campaigns, and what the preview shows of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imail.kit.signing import Signer
from tests.conftest import TEST_SECRET, make_settings
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, counts, create_campaign, make_inbox, step

ADDRESS = "Acme Ltd\n1 Market Street\nSpringfield, IL 62701"
BODY = (
    '<p>Hi {{first_name|there}}, <a href="https://acme.io/demo">demo</a>. <a '
    'href="{{unsubscribe_url}}">Stop</a></p>'
)


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, public_url="https://t.acme.test")


async def preview(client, headers, campaign_id: str, lead_id: str) -> dict:
    response = await client.post(
        f"/v1/campaigns/{campaign_id}/preview", headers=headers, json={"lead_id": lead_id}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def add_lead(client, headers, campaign_id: str) -> str:
    response = await client.post(
        "/v1/leads",
        headers=headers,
        json={"campaign_id": campaign_id, "email": "ana@example.org", "first_name": "Ana"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_the_workspace_footer_is_read_and_set_by_its_own_keys(
    client, database, workspace, other_workspace
):
    h = workspace.headers()
    before = (await client.get("/v1/workspace", headers=h)).json()
    assert (
        before["id"] == workspace.workspace_id
        and before["postal_address"] is None
        and before["footer_text"] is None
    )

    updated = await client.patch("/v1/workspace", headers=h, json={"postal_address": f"  {ADDRESS}\n\n"})
    assert updated.status_code == 200 and updated.json()["postal_address"] == ADDRESS
    text = "Unsubscribe here: {{unsubscribe_url}}"
    assert (await client.patch("/v1/workspace", headers=h, json={"footer_text": text})).json() == {
        **before,
        "postal_address": ADDRESS,
        "footer_text": text,
    }
    assert (await client.get("/v1/workspace", headers=other_workspace.headers())).json()[
        "postal_address"
    ] is None

    # An opt-out line must carry the link, and may use nothing else.
    for bad in ("No link here", "Bye {{first_name}} {{unsubscribe_url}}", "{{unsubscribe_url"):
        assert_error(
            await client.patch("/v1/workspace", headers=h, json={"footer_text": bad}), 400, "footer_text"
        )
    assert_error(
        await client.patch("/v1/workspace", headers=h, json={"postal_address": "x" * 501}),
        400,
        "postal_address",
    )
    assert_error(await client.patch("/v1/workspace", headers=h, json={"tier": "apex"}), 400, "tier")
    # Shared by both ledgers: a test key reads it but cannot change it; scopes are `workspace:read|write`.
    assert_error(
        await client.patch(
            "/v1/workspace", headers=workspace.headers(live=False), json={"postal_address": "Elsewhere"}
        ),
        403,
        None,
        "forbidden",
    )
    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["workspace:read"]))
    assert (await client.get("/v1/workspace", headers=reader)).status_code == 200
    assert_error(
        await client.patch("/v1/workspace", headers=reader, json={"postal_address": "Elsewhere"}),
        403,
        None,
        "forbidden",
    )
    campaigns_only = bearer(await make_key(database, workspace.workspace_id, scopes=["campaigns:write"]))
    assert_error(await client.get("/v1/workspace", headers=campaigns_only), 403, None, "forbidden")
    final = (await client.get("/v1/workspace", headers=h)).json()
    assert final["postal_address"] == ADDRESS and final["footer_text"] == text

    cleared = await client.patch("/v1/workspace", headers=h, json={"postal_address": None, "footer_text": ""})
    assert cleared.json()["postal_address"] is None and cleared.json()["footer_text"] is None


async def test_include_footer_needs_a_postal_address_and_the_preview_renders_it(client, database, workspace):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    before = await counts(database)
    response = await client.post(
        "/v1/campaigns",
        headers=h,
        json={"name": "Q4", "inbox_ids": [inbox], "steps": [step(body=BODY)], "include_footer": True},
    )
    error = assert_error(response, 400, "include_footer")
    assert "PATCH /v1/workspace" in error["message"]
    assert await counts(database) == before  # nothing half-written

    await client.patch("/v1/workspace", headers=h, json={"postal_address": ADDRESS})
    campaign = await create_campaign(client, h, [inbox], steps=[step(body=BODY)], include_footer=True)
    assert campaign["include_footer"] is True and campaign["text_only"] is False
    lead_id = await add_lead(client, h, campaign["id"])
    shown = await preview(client, h, campaign["id"], lead_id)
    url = shown["unsubscribe_url"]
    assert url.startswith("https://t.acme.test/u/")
    assert Signer(TEST_SECRET).unsign(
        "unsubscribe", url.rsplit("/", 1)[1]
    )  # the List-Unsubscribe signer's link
    assert f'<a href="{url}">Stop</a>' in shown["body"]
    assert f'Don\'t want to hear from me again? Unsubscribe: <a href="{url}">{url}</a>' in shown["body"]
    assert "Acme Ltd<br>1 Market Street<br>Springfield, IL 62701" in shown["body"]
    assert shown["text"].endswith(f"Unsubscribe: {url}\nAcme Ltd\n1 Market Street\nSpringfield, IL 62701")
    assert f"Stop ({url})" in shown["text"]

    off = await client.patch(f"/v1/campaigns/{campaign['id']}", headers=h, json={"include_footer": False})
    assert off.json()["include_footer"] is False
    assert "1 Market Street" not in (await preview(client, h, campaign["id"], lead_id))["body"]
    assert_error(
        await client.patch(f"/v1/campaigns/{campaign['id']}", headers=h, json={"include_footer": None}),
        400,
        "include_footer",
    )


async def test_unsubscribe_url_is_a_known_variable_and_not_a_custom_one(client, database, workspace):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    await create_campaign(client, h, [inbox], steps=[step(body="<p>{{unsubscribe_url}}</p>")])
    response = await client.post(
        "/v1/campaigns",
        headers=h,
        json={"name": "Q4", "inbox_ids": [inbox], "steps": [step()], "custom_variables": ["unsubscribe_url"]},
    )
    assert_error(response, 400, "custom_variables[0]")
    unknown = await client.post(
        "/v1/campaigns",
        headers=h,
        json={"name": "Q4", "inbox_ids": [inbox], "steps": [step(body="<p>{{unsubscribe_link}}</p>")]},
    )
    assert_error(unknown, 400, "steps[0].body")


async def test_text_only_is_a_campaign_option_and_the_preview_shows_only_text(client, database, workspace):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(client, h, [inbox], steps=[step(body=BODY)], text_only=True)
    assert campaign["text_only"] is True
    assert (await client.get(f"/v1/campaigns/{campaign['id']}", headers=h)).json()["text_only"] is True
    lead_id = await add_lead(client, h, campaign["id"])
    shown = await preview(client, h, campaign["id"], lead_id)
    assert shown["text_only"] is True and shown["body"] is None
    assert shown["text"] == f"Hi Ana, demo (https://acme.io/demo). Stop ({shown['unsubscribe_url']})"

    back = await client.patch(f"/v1/campaigns/{campaign['id']}", headers=h, json={"text_only": False})
    assert back.json()["text_only"] is False
    html = await preview(client, h, campaign["id"], lead_id)
    assert html["text_only"] is False and html["body"].startswith("<p>Hi Ana")
    assert_error(
        await client.patch(f"/v1/campaigns/{campaign['id']}", headers=h, json={"text_only": "yes please"}),
        400,
        "text_only",
    )


def test_the_operator_sets_the_footer_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")}
    env.update(IMAIL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/cli.db", PYTHONPATH=":".join(sys.path))

    def imail(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "imail.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    assert imail("db", "upgrade").returncode == 0
    workspace_id = json.loads(imail("workspaces", "create", "Acme", "--json").stdout)["workspace_id"]
    done = imail(
        "workspaces",
        "set-footer",
        workspace_id,
        "--address",
        "Acme Ltd\\n1 Market Street",
        "--text",
        "Opt out: {{unsubscribe_url}}",
    )
    assert done.returncode == 0, done.stderr
    assert "'Acme Ltd\\n1 Market Street'" in done.stdout and "'Opt out: {{unsubscribe_url}}'" in done.stdout
    refused = imail("workspaces", "set-footer", workspace_id, "--text", "no link")
    assert refused.returncode == 1 and "footer_text" in refused.stderr
