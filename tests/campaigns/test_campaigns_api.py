"""`/v1/campaigns`: create/update validation (400 naming the field, nothing written), the status machine,
listing, tenancy."""

from __future__ import annotations

import copy

import pytest

from tests.fixtures.outreach import assert_error, campaign_body, counts, create_campaign, make_inbox, step


@pytest.fixture
async def inbox(database, workspace) -> str:
    return await make_inbox(database, workspace.workspace_id, email="sender@acme.test")


async def test_create_returns_a_draft_with_defaults(client, workspace, inbox):
    body = campaign_body(
        [inbox],
        steps=[
            step(),
            step(subject=None, body="<p>Following up</p><p>Bye</p>", delay={"amount": 3, "unit": "days"}),
        ],
    )
    response = await client.post("/v1/campaigns", headers=workspace.headers(), json=body)
    assert response.status_code == 201, response.text
    campaign = response.json()
    assert campaign["id"].startswith("cmp_") and campaign["object"] == "campaign"
    assert campaign["status"] == "draft"
    assert campaign["inbox_ids"] == [inbox]
    assert campaign["daily_limit"] == 5000  # the Surge tier's maximum
    assert campaign["send_window"] == {
        "timezone": "lead",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }
    assert (campaign["track_opens"], campaign["track_clicks"], campaign["stop_on_reply"]) == (
        True,
        True,
        True,
    )
    assert campaign["sent_today"] == 0 and campaign["reply_rate_7d"] == 0.0
    assert campaign["livemode"] is True and campaign["created_at"].endswith("Z")
    first, second = campaign["steps"]
    assert first["number"] == 1 and first["text"] == "Hello {{first_name|there}}"
    assert (
        first["delay"] == {"amount": 0, "unit": "days"}
        and first["variants"] == []
        and first["branches"] == []
    )
    assert second["subject"] is None and second["text"] == "Following up\n\nBye"
    fetched = await client.get(f"/v1/campaigns/{campaign['id']}", headers=workspace.headers())
    assert fetched.status_code == 200 and fetched.json() == campaign


async def test_variants_and_branches_round_trip(client, workspace, inbox):
    steps = [
        step(
            variants=[
                {"subject": "Quick question", "weight": 70},
                {"body": "<p>Other {{company|team}}</p>", "weight": 30},
            ],
            branches=[{"condition": "opened", "next_step": 3}, {"condition": "not_opened", "next_step": 2}],
        ),
        step(subject=None, body="<p>bump</p>", delay={"amount": 2, "unit": "days"}),
        step(
            subject=None,
            body="<p>saw you opened</p>",
            delay={"amount": 90, "unit": "minutes"},
            branches=[{"condition": "clicked", "next_step": None}],
        ),
    ]
    campaign = await create_campaign(
        client,
        workspace.headers(),
        [inbox],
        steps=steps,
        daily_limit=120,
        send_window={"timezone": "Europe/Paris", "days": ["fri", "mon"], "start": "08:30", "end": "12:00"},
        track_clicks=False,
    )
    variants = campaign["steps"][0]["variants"]
    assert [(v["label"], v["weight"]) for v in variants] == [("A", 70), ("B", 30)]
    assert (
        variants[0]["subject"] == "Quick question"
        and variants[0]["body"] is None
        and variants[0]["text"] is None
    )
    assert variants[1]["text"] == "Other {{company|team}}"
    assert campaign["steps"][0]["branches"] == [
        {"condition": "opened", "next_step": 3},
        {"condition": "not_opened", "next_step": 2},
    ]
    assert campaign["send_window"]["days"] == ["mon", "fri"]  # normalized to week order
    assert campaign["daily_limit"] == 120 and campaign["track_clicks"] is False


def _with(body: dict, path: str, value) -> dict:
    """A copy of body with one nested key (dotted, [i] for indexes) set; value ... deletes it."""
    body = copy.deepcopy(body)
    parts = path.replace("]", "").replace("[", ".").split(".")
    target = body
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is ...:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


BAD_CREATES = [
    ("name", "x" * 121, "name", "at most 120"),
    ("name", "   ", "name", "must not be empty"),
    ("name", ..., "name", "required"),
    ("steps", [], "steps", "1–20 steps"),
    ("steps", [step()] * 21, "steps", "1–20 steps"),
    ("daily_limit", 0, "daily_limit", "daily_limit must be between 1 and 5000 on Surge tier"),
    ("daily_limit", 5001, "daily_limit", "daily_limit must be between 1 and 5000 on Surge tier"),
    ("send_window", {"timezone": "Europe/Pariss"}, "send_window.timezone", "unknown time zone"),
    ("send_window", {"start": "17:00", "end": "09:00"}, "send_window.end", "must be after"),
    ("send_window", {"start": "9am"}, "send_window.start", "HH:MM"),
    ("send_window", {"days": []}, "send_window.days", "at least one day"),
    ("send_window", {"days": ["mon", "funday"]}, "send_window.days[1]", None),
    ("steps[0].subject", None, "steps[0].subject", "step 1 needs a subject"),
    ("steps[0].body", "  ", "steps[0].body", "needs a body"),
    ("steps[0].subject", "Hi {Ana|Bob", "steps[0].subject", "step 1 subject: unbalanced brace"),
    ("steps[0].delay", {"amount": 400, "unit": "days"}, "steps[0].delay.amount", "365 days"),
    ("steps[0].delay", {"amount": 1, "unit": "weeks"}, "steps[0].delay.unit", None),
    ("steps[0].variants", [{"subject": "only one"}], "steps[0].variants", "give 2–10"),
    (
        "steps[0].variants",
        [{"subject": "a", "weight": 0}, {"subject": "b"}],
        "steps[0].variants[0].weight",
        None,
    ),
    ("steps[0].branches", [{"condition": "replied", "next_step": 1}], "steps[0].branches[0].condition", None),
    ("custom_variables", ["first_name"], "custom_variables[0]", "built-in"),
    ("custom_variables", ["ok", "not ok"], "custom_variables[1]", "not a variable name"),
    ("nme", "typo", "nme", None),
    ("track_opens", "sometimes", "track_opens", None),
    ("inbox_ids", ..., "inbox_ids", "required"),
]


async def test_invalid_create_is_400_naming_the_field_and_writes_nothing(client, database, workspace, inbox):
    before = await counts(database)
    for path, value, field, words in BAD_CREATES:
        body = _with(campaign_body([inbox]), path, value)
        response = await client.post("/v1/campaigns", headers=workspace.headers(), json=body)
        error = assert_error(response, 400, field, case=path)
        if words:
            assert words in error["message"], (path, error)
    assert await counts(database) == before


async def test_template_errors_name_the_step_and_position(client, database, workspace, inbox):
    steps = [step(), step(subject=None, body="<p>Hi {{fist_name}},</p>")]
    response = await client.post(
        "/v1/campaigns", headers=workspace.headers(), json=campaign_body([inbox], steps=steps)
    )
    error = assert_error(response, 400, "steps[1].body")
    assert "step 2 body" in error["message"] and "unknown variable {{fist_name}}" in error["message"]
    assert "position 7 (line 1, column 7)" in error["message"]

    variants = [{"subject": "A"}, {"subject": "B {{pain_point}}"}]
    response = await client.post(
        "/v1/campaigns",
        headers=workspace.headers(),
        json=campaign_body([inbox], steps=[step(variants=variants)]),
    )
    error = assert_error(response, 400, "steps[0].variants[1].subject")
    assert "step 1 variant B subject" in error["message"]
    # Declared custom variables and fallbacks are fine.
    ok = campaign_body([inbox], steps=[step(variants=variants)], custom_variables=["pain_point"])
    assert (await client.post("/v1/campaigns", headers=workspace.headers(), json=ok)).status_code == 201
    assert (await counts(database))["campaigns"] == 1


async def test_branches_only_go_forward(client, database, workspace, inbox):
    cases = [
        (
            [{"condition": "opened", "next_step": 1}],
            "steps[1].branches[0].next_step",
            "only branch forward, to steps 3–3",
        ),
        ([{"condition": "opened", "next_step": 4}], "steps[1].branches[0].next_step", "got 4"),
        (
            [{"condition": "opened", "next_step": 3}, {"condition": "opened", "next_step": None}],
            "steps[1].branches[1].condition",
            "already branches on opened",
        ),
    ]
    for branches, field, words in cases:
        steps = [step(), step(subject=None, branches=branches), step(subject=None)]
        response = await client.post(
            "/v1/campaigns", headers=workspace.headers(), json=campaign_body([inbox], steps=steps)
        )
        assert words in assert_error(response, 400, field)["message"]
    last = [step(), step(subject=None, branches=[{"condition": "clicked", "next_step": 2}])]
    response = await client.post(
        "/v1/campaigns", headers=workspace.headers(), json=campaign_body([inbox], steps=last)
    )
    assert "it is the last step" in assert_error(response, 400, "steps[1].branches[0].next_step")["message"]
    assert (await counts(database))["campaigns"] == 0


async def test_inbox_ids_must_be_this_workspace_and_ledger(
    client, database, workspace, other_workspace, inbox
):
    theirs = await make_inbox(database, other_workspace.workspace_id, email="them@globex.test")
    test_mode = await make_inbox(database, workspace.workspace_id, livemode=False, email="ci@acme.test")
    before = await counts(database)
    for inbox_ids, field in (
        ([theirs], "inbox_ids[0]"),
        ([inbox, test_mode], "inbox_ids[1]"),
        ([inbox, "inb_01HZZZZZZZZZZZZZZZZZZZZZZZ"], "inbox_ids[1]"),
        ([inbox, "not-an-id"], "inbox_ids[1]"),
        ([inbox, inbox], "inbox_ids[1]"),
    ):
        response = await client.post(
            "/v1/campaigns", headers=workspace.headers(), json=campaign_body(inbox_ids)
        )
        assert_error(response, 400, field)
    assert await counts(database) == before
    # The test-mode inbox is usable from the test ledger.
    created = await client.post(
        "/v1/campaigns", headers=workspace.headers(live=False), json=campaign_body([test_mode])
    )
    assert created.status_code == 201 and created.json()["livemode"] is False


async def test_update_validates_and_writes_nothing_on_error(client, database, workspace, inbox):
    campaign = await create_campaign(
        client,
        workspace.headers(),
        [inbox],
        custom_variables=["pain_point"],
        steps=[step(body="<p>{{pain_point}}</p>")],
    )
    url = f"/v1/campaigns/{campaign['id']}"
    for body, field in (
        ({"daily_limit": 9999}, "daily_limit"),
        ({"name": None}, "name"),
        ({"steps": None}, "steps"),
        ({"name": "x" * 130}, "name"),
        ({"steps": [step(subject="{{nope}}")]}, "steps[0].subject"),
        ({"custom_variables": []}, "steps[0].body"),  # the current steps use {{pain_point}}
        ({"inbox_ids": ["inb_01HZZZZZZZZZZZZZZZZZZZZZZZ"]}, "inbox_ids[0]"),
        ({"send_window": {"timezone": "Nowhere/Land"}}, "send_window.timezone"),
        ({"status": "active"}, "status"),
    ):
        assert_error(await client.patch(url, headers=workspace.headers(), json=body), 400, field)
    assert (await client.get(url, headers=workspace.headers())).json() == campaign

    second = await make_inbox(database, workspace.workspace_id, email="second@acme.test")
    response = await client.patch(
        url,
        headers=workspace.headers(),
        json={
            "name": "Renamed",
            "daily_limit": 40,
            "inbox_ids": [second, inbox],
            "track_opens": False,
            "steps": [step(), step(subject=None, body="<p>{{pain_point|that}}</p>")],
            "custom_variables": [],
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["name"], updated["daily_limit"], updated["inbox_ids"], updated["track_opens"]) == (
        "Renamed",
        40,
        [second, inbox],
        False,
    )
    assert len(updated["steps"]) == 2 and updated["updated_at"] > campaign["updated_at"]
    reset = await client.patch(
        url, headers=workspace.headers(), json={"daily_limit": None, "send_window": None}
    )
    assert reset.json()["daily_limit"] == 5000 and reset.json()["send_window"]["timezone"] == "lead"


async def test_status_machine(client, database, workspace, inbox):
    down = await make_inbox(database, workspace.workspace_id, status="disconnected", email="down@acme.test")
    pending = await make_inbox(
        database, workspace.workspace_id, status="setup_pending", email="oauth@acme.test"
    )
    h = workspace.headers()
    campaign = await create_campaign(client, h, [down, pending])
    url = f"/v1/campaigns/{campaign['id']}"

    assert (
        "draft"
        in assert_error(await client.post(f"{url}/pause", headers=h), 409, None, "conflict")["message"]
    )
    error = assert_error(await client.post(f"{url}/resume", headers=h), 409, "inbox_ids", "conflict")
    assert f"{down} is disconnected" in error["message"] and f"{pending} is setup_pending" in error["message"]
    assert (await client.get(url, headers=h)).json()["status"] == "draft"

    empty = await create_campaign(client, h, [])
    assert (
        "has no inboxes"
        in assert_error(
            await client.post(f"/v1/campaigns/{empty['id']}/resume", headers=h), 409, "inbox_ids"
        )["message"]
    )

    await client.patch(url, headers=h, json={"inbox_ids": [down, inbox]})
    active = await client.post(f"{url}/resume", headers=h)
    assert active.status_code == 200 and active.json()["status"] == "active"
    again = await client.post(f"{url}/resume", headers=h)
    assert again.json()["status"] == "active" and again.json()["updated_at"] == active.json()["updated_at"]
    # An active campaign keeps at least one connected inbox.
    assert_error(await client.patch(url, headers=h, json={"inbox_ids": [down]}), 400, "inbox_ids")

    paused = await client.post(f"{url}/pause", headers=h)
    assert paused.json()["status"] == "paused"
    again = await client.post(f"{url}/pause", headers=h)
    assert again.json()["status"] == "paused" and again.json()["updated_at"] == paused.json()["updated_at"]
    assert (await client.post(f"{url}/resume", headers=h)).json()["status"] == "active"

    archived = await client.delete(url, headers=h)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert (await client.get(url, headers=h)).json()["status"] == "archived"
    assert (await client.delete(url, headers=h)).json()["status"] == "archived"
    for method, path in (("post", f"{url}/pause"), ("post", f"{url}/resume")):
        assert_error(await getattr(client, method)(path, headers=h), 409, None, "conflict")
    assert_error(await client.patch(url, headers=h, json={"name": "x"}), 409, None, "conflict")


async def test_list_filters_and_pages(client, workspace, inbox):
    h = workspace.headers()
    made = [await create_campaign(client, h, [inbox], name=f"c{i}") for i in range(3)]
    await client.delete(f"/v1/campaigns/{made[0]['id']}", headers=h)

    page = (await client.get("/v1/campaigns?limit=1", headers=h)).json()
    assert [c["name"] for c in page["data"]] == ["c2"] and page["pagination"]["has_more"] is True
    rest = (
        await client.get(f"/v1/campaigns?limit=5&cursor={page['pagination']['next_cursor']}", headers=h)
    ).json()
    assert [c["name"] for c in rest["data"]] == ["c1"] and rest["pagination"] == {
        "next_cursor": None,
        "has_more": False,
    }
    archived = (await client.get("/v1/campaigns?status=archived", headers=h)).json()["data"]
    assert [c["name"] for c in archived] == ["c0"]
    assert (await client.get("/v1/campaigns?status=draft", headers=h)).json()["data"][0]["inbox_ids"] == [
        inbox
    ]
    assert_error(await client.get("/v1/campaigns?status=running", headers=h), 400, "status")


async def test_tenancy(client, workspace, other_workspace, inbox):
    campaign = await create_campaign(client, workspace.headers(), [inbox])
    url = f"/v1/campaigns/{campaign['id']}"
    for headers in (other_workspace.headers(), workspace.headers(live=False)):
        assert (await client.get(url, headers=headers)).status_code == 404
        assert (await client.patch(url, headers=headers, json={"name": "x"})).status_code == 404
        assert (await client.post(f"{url}/resume", headers=headers)).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
        assert (await client.get("/v1/campaigns", headers=headers)).json()["data"] == []
    assert (await client.get(url, headers=workspace.headers())).json()["status"] == "draft"


async def test_scopes(client, database, workspace, inbox):
    from tests.fixtures.factories import bearer, make_key

    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["campaigns:read"]))
    assert (await client.get("/v1/campaigns", headers=reader)).status_code == 200
    assert (
        await client.post("/v1/campaigns", headers=reader, json=campaign_body([inbox]))
    ).status_code == 403
