"""The warmup settings and state on `/v1/inboxes`: set through the start body or PATCH, validated as 400s,
shown on GET; pausing through the API keeps its reason; test inboxes keep warmup state but never send warmup
mail."""

from __future__ import annotations

from imail.models.warmup import WarmupMessage
from tests.warmup.conftest import Pool


async def test_start_body_and_patch_set_the_ramp_and_get_shows_the_state(pool: Pool):
    inbox_id = await pool.inbox(start=False)
    shown = (await pool.get(inbox_id))["warmup"]
    assert (
        shown["status"] == "off" and shown["today"]["target"] == 0 and shown["placement_7d"]["rate"] is None
    )
    assert (shown["start_volume"], shown["daily_increment"], shown["ceiling"]) == (2, 2, 40)

    pool.clock.at(0, 9)
    started = await pool.client.post(
        f"/v1/inboxes/{inbox_id}/warmup/start",
        headers=pool.headers,
        json={"start_volume": 5, "ceiling": 20, "weekdays_only": True},
    )
    assert started.status_code == 200, started.text
    warmup = started.json()["warmup"]
    assert warmup["status"] == "active" and warmup["started_at"] == "2026-11-26T09:00:00Z"
    assert warmup["today"] == {"day": "2026-11-26", "target": 5, "sent": 0, "replies_sent": 0}
    assert (
        warmup["start_volume"],
        warmup["ceiling"],
        warmup["weekdays_only"],
        warmup["daily_increment"],
    ) == (5, 20, True, 2)

    patched = await pool.client.patch(
        f"/v1/inboxes/{inbox_id}",
        headers=pool.headers,
        json={"warmup": {"daily_increment": 4, "reply_rate": 0.1, "enable_slow_ramp": True}},
    )
    assert patched.status_code == 200, patched.text
    warmup = patched.json()["warmup"]
    assert (
        warmup["daily_increment"],
        warmup["reply_rate"],
        warmup["enable_slow_ramp"],
        warmup["start_volume"],
    ) == (4, 0.1, True, 5)
    pool.clock.at(1, 9)
    assert (await pool.get(inbox_id))["warmup"]["today"]["target"] == 9  # Friday: 5 + 4
    pool.clock.at(2, 9)
    assert (await pool.get(inbox_id))["warmup"]["today"]["target"] == 0  # Saturday, weekdays only

    listed = await pool.client.get("/v1/inboxes", headers=pool.headers)
    assert listed.json()["data"][0]["warmup"]["daily_increment"] == 4


async def test_bad_warmup_settings_are_400s_naming_the_field(pool: Pool):
    inbox_id = await pool.inbox(start=False)
    cases = [
        ({"warmup": {"start_volume": 50, "ceiling": 10}}, "warmup.start_volume"),
        ({"warmup": {"ceiling": 0}}, "warmup.ceiling"),
        ({"warmup": {"reply_rate": 1.5}}, "warmup.reply_rate"),
        ({"warmup": {"ceiling": None}}, "warmup.ceiling"),
        ({"warmup": {"pace": 3}}, "warmup.pace"),
    ]
    for body, field in cases:
        response = await pool.client.patch(f"/v1/inboxes/{inbox_id}", headers=pool.headers, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["field"] == field, response.text
    response = await pool.client.post(
        f"/v1/inboxes/{inbox_id}/warmup/start", headers=pool.headers, json={"ceiling": 1, "start_volume": 2}
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "warmup.start_volume"
    assert (await pool.get(inbox_id))["warmup_status"] == "off"  # nothing of the refused start was kept


async def test_pausing_through_the_api_stops_sending_and_shows_why(pool: Pool):
    a = await pool.inbox({"start_volume": 10, "ceiling": 10, "reply_rate": 0})
    await pool.inbox({"start_volume": 10, "ceiling": 10, "reply_rate": 0})
    pool.clock.at(0, 12)
    await pool.send()
    before = await pool.count(WarmupMessage, WarmupMessage.inbox_id == a)
    paused = await pool.client.post(f"/v1/inboxes/{a}/warmup/pause", headers=pool.headers)
    assert paused.status_code == 200
    assert paused.json()["warmup"]["last_pause_reason"] == "paused through the API"
    pool.clock.at(0, 18)
    await pool.send()
    assert await pool.count(WarmupMessage, WarmupMessage.inbox_id == a) == before
    resumed = await pool.client.post(f"/v1/inboxes/{a}/warmup/start", headers=pool.headers)
    assert (
        resumed.json()["warmup"]["started_at"] == "2026-11-26T00:00:00Z"
    )  # the ramp carries on from the first start
    await pool.send()
    assert await pool.count(WarmupMessage, WarmupMessage.inbox_id == a) == 10


async def test_test_mode_inboxes_keep_warmup_state_but_never_send(pool: Pool, workspace):
    test_headers = workspace.headers(live=False)
    box = pool.make_mailbox("test")
    created = await pool.client.post("/v1/inboxes", headers=test_headers, json=box.body())
    assert created.status_code == 201, created.text
    inbox_id = created.json()["id"]
    started = await pool.client.post(f"/v1/inboxes/{inbox_id}/warmup/start", headers=test_headers)
    assert started.status_code == 200 and started.json()["warmup"]["status"] == "active"
    await pool.inbox()  # a live pool member it could otherwise write to
    pool.clock.at(0, 18)
    await pool.send()
    assert await pool.count(WarmupMessage, WarmupMessage.inbox_id == inbox_id) == 0
    assert all(m.envelope_from != box.email for _, m in pool.router.accepted)
