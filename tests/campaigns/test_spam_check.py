"""`POST /v1/campaigns/{id}/spam-check`: every step rendered as the engine sends it, scored by a real spamd
(tests.fixtures.spamd: Debian's SpamAssassin 4 with its packaged rules, local tests only).

"Content rules" here are the rules that judge what imail writes, not the environment the test runs in. Read
from SpamAssassin's own rule files: rules declared as `body`, `rawbody`, `uri` or `full` tests, and `meta`
rules unless they are conditioned on the message's DKIM signature (`__DKIM_EXISTS`: the sending mailbox
provider signs real mail, a test message has no signature). `header` rules (relays, Received lines,
authentication results) are the environment's. A rule the files do not declare counts as content."""

from __future__ import annotations

from functools import cache

import pytest

from imail.config import SettingsError, load_settings
from tests.conftest import make_settings
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, create_campaign, make_inbox, step
from tests.fixtures.ports import free_port
from tests.fixtures.spamd import RULES, Spamd, spamd  # noqa: F401

CONTENT_TYPES = frozenset({"body", "rawbody", "uri", "full"})
RULE_TYPES = frozenset({"header", "mimeheader", "meta", *CONTENT_TYPES})

# A three-step sequence as a careful sender writes it: a short opener with one link, two shorter follow-ups.
STEPS = [
    step(
        subject="Quick question, {{first_name|there}}",
        body="<p>Hi {{first_name|there}},</p><p>I noticed {{company|your team}} is growing its sales team. "
        "We help "
        "companies like yours book more meetings without adding headcount.</p><p>Would a short call next "
        "week "
        'make sense? Here is <a href="https://acme.io/demo">a two-minute demo</a>.</p><p>Best,<br>Ana</p>',
    ),
    step(
        subject=None,
        body="<p>Hi {{first_name|there}}, just bumping this up in case it got buried.</p>",
        delay={"amount": 2, "unit": "days"},
    ),
    step(
        subject=None,
        body="<p>Last note from me: should I close your file, or is there someone better to talk to?</p>",
        delay={"amount": 4, "unit": "days"},
    ),
]


@pytest.fixture
def settings(database_url: str, spamd: Spamd):  # noqa: F811
    return make_settings(database_url, public_url="https://t.acme.test", spamd_url=spamd.url)


@cache
def rule_declarations() -> dict[str, tuple[str, str]]:
    """Rule name → (type, definition), from the rule files spamd was started with."""
    declared: dict[str, tuple[str, str]] = {}
    for path in sorted(RULES.glob("*.cf")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split(None, 2)
            if len(parts) >= 2 and parts[0] in RULE_TYPES:
                declared.setdefault(parts[1], (parts[0], parts[2] if len(parts) == 3 else ""))
    return declared


def is_content_rule(name: str) -> bool:
    kind, definition = rule_declarations().get(name, ("body", ""))
    if kind == "meta":
        return "__DKIM_EXISTS" not in definition
    return kind in CONTENT_TYPES


def content_points(scored: dict) -> float:
    return round(sum(r["score"] for r in scored["rules"] if is_content_rule(r["name"])), 3)


async def spam_check(client, headers, campaign_id: str, body: dict | None = None):
    return await client.post(f"/v1/campaigns/{campaign_id}/spam-check", headers=headers, json=body or {})


async def test_the_default_and_a_text_only_sequence_pass_a_real_spamassassin(client, database, workspace):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    default = await create_campaign(client, h, [inbox], steps=STEPS)
    assert default["track_opens"] and default["track_clicks"] and not default["text_only"]
    text_only = await create_campaign(client, h, [inbox], steps=STEPS, text_only=True)

    response = await spam_check(client, h, default["id"])
    assert response.status_code == 200, response.text
    checked = response.json()
    assert checked["object"] == "spam_check" and checked["lead_id"] is None
    assert [s["step"] for s in checked["steps"]] == [1, 2, 3]
    assert checked["steps"][0]["subject"] == "Quick question, Alex"  # the sample lead
    assert checked["steps"][1]["subject"] == "Re: Quick question, Alex"  # follow-ups thread
    for scored in checked["steps"]:
        assert scored["threshold"] == 5.0 and not scored["is_spam"]
        names = {r["name"] for r in scored["rules"]}
        assert not any(name.startswith("HTML_IMAGE_ONLY") for name in names), scored
        assert content_points(scored) <= 1.0, scored

    scored_text = (await spam_check(client, h, text_only["id"])).json()["steps"]
    for scored in scored_text:
        assert content_points(scored) == 0.0, scored
        assert "HTML_MESSAGE" not in {r["name"] for r in scored["rules"]}


async def test_the_check_reports_what_spamassassin_objects_to(client, database, workspace):
    """The same check catches an email that is one image and a few words."""
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(
        client,
        h,
        [inbox],
        steps=[
            step(
                subject="Our offer",
                body='<p>Hi!</p><img src="https://acme.io/banner.png" width="600" height="400">',
            ),
        ],
    )
    scored = (await spam_check(client, h, campaign["id"])).json()["steps"][0]
    image_rule = next(r for r in scored["rules"] if r["name"].startswith("HTML_IMAGE_ONLY"))
    assert image_rule["score"] > 1.0 and "HTML: images with" in image_rule["description"]
    assert content_points(scored) > 1.0
    assert scored["score"] == pytest.approx(sum(r["score"] for r in scored["rules"]), abs=0.2)


async def test_a_named_lead_is_rendered_and_another_tenants_lead_is_refused(
    client, database, workspace, other_workspace
):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(client, h, [inbox], steps=STEPS[:1])
    lead = (
        await client.post(
            "/v1/leads",
            headers=h,
            json={"campaign_id": campaign["id"], "email": "bo@example.org", "first_name": "Bo"},
        )
    ).json()
    checked = (await spam_check(client, h, campaign["id"], {"lead_id": lead["id"]})).json()
    assert checked["lead_id"] == lead["id"] and checked["steps"][0]["subject"] == "Quick question, Bo"

    other_inbox = await make_inbox(database, other_workspace.workspace_id)
    theirs = await create_campaign(client, other_workspace.headers(), [other_inbox], steps=STEPS[:1])
    their_lead = (
        await client.post(
            "/v1/leads",
            headers=other_workspace.headers(),
            json={"campaign_id": theirs["id"], "email": "cy@example.org"},
        )
    ).json()
    assert_error(await spam_check(client, h, theirs["id"]), 404, None, "not_found")
    assert_error(await spam_check(client, h, campaign["id"], {"lead_id": their_lead["id"]}), 400, "lead_id")
    assert_error(await spam_check(client, h, campaign["id"], {"lead_id": 1}), 400, "lead_id")

    # Read access to campaigns and leads is enough (it writes nothing); a key without it is refused.
    reader = await make_key(database, workspace.workspace_id, scopes=["campaigns:read", "leads:read"])
    assert (await spam_check(client, bearer(reader), campaign["id"])).status_code == 200
    webhooks_only = await make_key(database, workspace.workspace_id, scopes=["webhooks:write"])
    assert_error(await spam_check(client, bearer(webhooks_only), campaign["id"]), 403, None, "forbidden")


async def test_without_spamd_the_check_says_how_to_enable_it(client, app, database, workspace, settings):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(client, h, [inbox], steps=STEPS[:1])
    app.state.settings = settings.model_copy(update={"spamd_url": None})
    error = assert_error(await spam_check(client, h, campaign["id"]), 409, None, "conflict")
    assert (
        "IMAIL_SPAMD_URL=spamd://" in error["message"]
        and "apt-get install spamassassin spamd" in error["message"]
    )
    no_body = await client.post(f"/v1/campaigns/{campaign['id']}/spam-check", headers=h)
    assert assert_error(no_body, 409, None, "conflict") == error


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:783", "spamd://", "spamd://127.0.0.1:99999", "spamd://h:783/x"]
)
def test_a_bad_spamd_url_stops_start_up_in_one_line(monkeypatch, url):
    monkeypatch.setenv("IMAIL_SPAMD_URL", url)
    with pytest.raises(SettingsError, match=r"^IMAIL_SPAMD_URL: must look like spamd://127\.0\.0\.1:783$"):
        load_settings()


async def test_an_unreachable_spamd_is_a_503(client, app, database, workspace, settings):
    h = workspace.headers()
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(client, h, [inbox], steps=STEPS[:1])
    app.state.settings = settings.model_copy(update={"spamd_url": f"spamd://127.0.0.1:{free_port()}"})
    error = assert_error(await spam_check(client, h, campaign["id"]), 503, None, "service_unavailable")
    assert "did not answer" in error["message"]
