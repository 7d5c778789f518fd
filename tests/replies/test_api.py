"""The unified inbox API: listing and filtering replies, one reply with its thread, label corrections, and
answering a lead in its thread over real SMTP in each security mode (test mode: recorded, not sent)."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes

import pytest
from sqlalchemy import func, select

from imail.kit.clock import utcnow
from imail.models import Event, Lead, Reply, SequenceState, Suppression
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.inbound import FIRST_SUBJECT, make_outreach, make_reply
from tests.fixtures.security import each_security, encrypted
from tests.fixtures.smtp import make_smtp_server, tls_cert  # noqa: F401


async def classified(database) -> list[Event]:
    async with database.transaction() as session:
        stmt = select(Event).where(Event.type == "reply.classified").order_by(Event.id)
        return list((await session.execute(stmt)).scalars())


async def lead_row(database, lead_id: str) -> Lead:
    async with database.transaction() as session:
        return await session.get(Lead, lead_id)


async def reply_count(database) -> int:
    async with database.transaction() as session:
        return (await session.execute(select(func.count()).select_from(Reply))).scalar_one()


@pytest.fixture
async def sent(database, settings, workspace):
    """Two campaigns' worth of sent email, each lead with a reply."""
    first = await make_outreach(database, settings, workspace.workspace_id, leads=2)
    second = await make_outreach(database, settings, workspace.workspace_id, leads=1)
    ids = {
        "a": (await make_reply(database, first, first.leads[0], label="interested"))[0],
        "b": (await make_reply(database, first, first.leads[1], label="out_of_office", auto_reply=True))[0],
        "c": (await make_reply(database, second, second.leads[0], label="not_interested"))[0],
    }
    return first, second, ids


async def test_list_filters_and_pages(client, workspace, sent):
    first, second, ids = sent
    headers = workspace.headers()
    body = (await client.get("/v1/replies", headers=headers)).json()
    assert [r["id"] for r in body["data"]] == [ids["c"], ids["b"], ids["a"]]  # newest first
    assert body["data"][0]["object"] == "reply" and body["data"][0]["direction"] == "inbound"

    async def listed(**query) -> list[str]:
        response = await client.get("/v1/replies", headers=headers, params=query)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["data"]]

    assert await listed(campaign_id=first.campaign_id) == [ids["b"], ids["a"]]
    assert await listed(inbox_id=second.inbox_id) == [ids["c"]]
    assert await listed(label="interested") == [ids["a"]]
    assert await listed(auto_reply="false") == [ids["c"], ids["a"]]
    assert await listed(lead_id=first.leads[1].lead_id) == [ids["b"]]
    assert await listed(direction="outbound") == []

    page = (await client.get("/v1/replies", headers=headers, params={"limit": 2})).json()
    assert page["pagination"]["has_more"] is True
    rest = (
        await client.get(
            "/v1/replies", headers=headers, params={"limit": 2, "cursor": page["pagination"]["next_cursor"]}
        )
    ).json()
    assert [r["id"] for r in page["data"] + rest["data"]] == [ids["c"], ids["b"], ids["a"]]
    assert rest["pagination"] == {"next_cursor": None, "has_more": False}

    bad = await client.get("/v1/replies", headers=headers, params={"label": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "label"


async def test_other_workspaces_and_the_other_ledger_see_nothing(client, workspace, other_workspace, sent):
    _, _, ids = sent
    assert (await client.get("/v1/replies", headers=other_workspace.headers())).json()["data"] == []
    assert (await client.get("/v1/replies", headers=workspace.headers(live=False))).json()["data"] == []
    for headers in (other_workspace.headers(), workspace.headers(live=False)):
        response = await client.get(f"/v1/replies/{ids['a']}", headers=headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        patched = await client.patch(f"/v1/replies/{ids['a']}", headers=headers, json={"label": "neutral"})
        assert patched.status_code == 404


async def test_one_reply_with_headers_text_and_thread(client, workspace, database, sent):
    first, _, ids = sent
    lead = first.leads[0]
    later, _ = await make_reply(
        database,
        first,
        lead,
        label="meeting_booked",
        text="Booked for Tuesday.",
        received_at=utcnow() + timedelta(minutes=5),
    )
    response = await client.get(f"/v1/replies/{ids['a']}", headers=workspace.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["headers"]["in-reply-to"] == [lead.header] and body["rfc_message_id"].startswith("<")
    assert (
        body["text"].startswith("Sounds interesting")
        and body["reply_text"] == "Sounds interesting, can we talk?"
    )
    assert [(i["object"], i["id"]) for i in body["thread"]] == [
        ("message", lead.message_id),
        ("reply", ids["a"]),
        ("reply", later),
    ]
    ours = body["thread"][0]
    assert (ours["step"], ours["subject"], ours["from_email"], ours["to_email"]) == (
        1,
        FIRST_SUBJECT,
        first.inbox_email,
        lead.email,
    )
    assert (
        body["thread"][2]["label"] == "meeting_booked" and body["thread"][2]["text"] == "Booked for Tuesday."
    )


async def test_correcting_a_label_updates_the_lead_and_fires_reply_classified(
    client, workspace, database, sent
):
    first, _, ids = sent
    lead = first.leads[0]
    response = await client.patch(
        f"/v1/replies/{ids['a']}", headers=workspace.headers(), json={"label": "meeting_booked"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["label"], response.json()["confidence"], response.json()["label_source"]) == (
        "meeting_booked",
        1.0,
        "manual",
    )
    assert (await lead_row(database, lead.lead_id)).interest_status == "meeting_booked"
    [event] = await classified(database)
    assert event.data == {
        "reply_id": ids["a"],
        "lead_id": lead.lead_id,
        "campaign_id": first.campaign_id,
        "label": "meeting_booked",
        "confidence": 1.0,
    }

    # The same correction again changes nothing and fires nothing.
    again = await client.patch(
        f"/v1/replies/{ids['a']}", headers=workspace.headers(), json={"label": "meeting_booked"}
    )
    assert again.status_code == 200 and len(await classified(database)) == 1

    # neutral says nothing about interest: it clears what the corrected label had set.
    await client.patch(f"/v1/replies/{ids['a']}", headers=workspace.headers(), json={"label": "neutral"})
    assert (await lead_row(database, lead.lead_id)).interest_status is None


async def test_correcting_to_unsubscribe_request_suppresses_the_address(client, workspace, database, sent):
    first, _, ids = sent
    lead = first.leads[0]
    response = await client.patch(
        f"/v1/replies/{ids['a']}", headers=workspace.headers(), json={"label": "unsubscribe_request"}
    )
    assert response.status_code == 200
    stored = await lead_row(database, lead.lead_id)
    assert (stored.status, stored.interest_status) == ("unsubscribed", "unsubscribed")
    async with database.transaction() as session:
        [entry] = (await session.execute(select(Suppression))).scalars().all()
        state = await session.get(SequenceState, lead.lead_id)
    assert (entry.value, entry.reason) == (lead.email, "unsubscribed")
    assert (state.status, state.stop_reason) == ("stopped", "unsubscribed")


async def test_bad_corrections_are_refused_and_change_nothing(client, workspace, database, sent):
    _, _, ids = sent
    headers = workspace.headers()
    for body, field in (
        ({"label": "hot"}, "label"),
        ({}, "label"),
        ({"label": "neutral", "note": "x"}, "note"),
    ):
        response = await client.patch(f"/v1/replies/{ids['a']}", headers=headers, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field
    missing = await client.patch(
        "/v1/replies/rpl_01JZZZZZZZZZZZZZZZZZZZZZZZ", headers=headers, json={"label": "neutral"}
    )
    assert missing.status_code == 404
    assert await classified(database) == []


async def test_scopes_guard_the_replies_family(client, workspace, database, sent):
    _, _, ids = sent
    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["replies:read"]))
    assert (await client.get(f"/v1/replies/{ids['a']}", headers=reader)).status_code == 200
    refused = await client.patch(f"/v1/replies/{ids['a']}", headers=reader, json={"label": "neutral"})
    assert refused.status_code == 403 and "replies:write" in refused.json()["error"]["message"]
    other = bearer(await make_key(database, workspace.workspace_id, scopes=["leads:write"]))
    assert (await client.get("/v1/replies", headers=other)).status_code == 403


# --- answering a lead -------------------------------------------------------------------------------------


@each_security
async def test_answering_a_lead_sends_in_the_thread_from_its_inbox(
    client, workspace, database, settings, make_smtp_server, security
):
    server = make_smtp_server(security=security)
    outreach = await make_outreach(
        database, settings, workspace.workspace_id, smtp_port=server.port, smtp_security=security
    )
    server.add_user(outreach.inbox_email, "smtp-secret")
    lead = outreach.leads[0]
    _, their_id = await make_reply(database, outreach, lead)

    response = await client.post(
        f"/v1/leads/{lead.lead_id}/reply",
        headers=workspace.headers(),
        json={"text": "Great — does Tuesday 10:00 work?"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["direction"], body["status"], body["label"]) == ("outbound", "sent", None)
    assert body["inbox_id"] == outreach.inbox_id and body["to_emails"] == [lead.email]

    [received] = server.wait_for_messages(1)
    assert received.envelope_from == outreach.inbox_email and received.envelope_to == [lead.email]
    assert received.login == outreach.inbox_email and received.tls == encrypted(security)
    sent_message = message_from_bytes(received.data)
    assert sent_message["In-Reply-To"] == their_id
    assert sent_message["References"].split() == [lead.header, their_id]
    assert sent_message["Subject"] == f"Re: {FIRST_SUBJECT}"
    assert "Tuesday 10:00" in received.data.decode()

    detail = (await client.get(f"/v1/replies/{body['id']}", headers=workspace.headers())).json()
    assert detail["in_reply_to"] == their_id and detail["rfc_message_id"] == sent_message["Message-ID"]
    assert [i["direction"] for i in detail["thread"]] == ["outbound", "inbound", "outbound"]
    listed = (
        await client.get("/v1/replies", headers=workspace.headers(), params={"direction": "outbound"})
    ).json()
    assert [r["id"] for r in listed["data"]] == [body["id"]]


async def test_in_test_mode_the_answer_is_recorded_not_sent(
    client, workspace, database, settings, make_smtp_server
):
    server = make_smtp_server(security="none")
    outreach = await make_outreach(
        database, settings, workspace.workspace_id, smtp_port=server.port, livemode=False
    )
    lead = outreach.leads[0]
    response = await client.post(
        f"/v1/leads/{lead.lead_id}/reply",
        headers=workspace.headers(live=False),
        json={"text": "Thanks!", "subject": "Next steps"},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["status"], response.json()["subject"], response.json()["livemode"]) == (
        "recorded",
        "Next steps",
        False,
    )
    assert server.messages == []
    live = await client.post(
        f"/v1/leads/{lead.lead_id}/reply", headers=workspace.headers(), json={"text": "x"}
    )
    assert live.status_code == 404  # a test lead is invisible to live keys


async def test_answers_that_cannot_be_sent_are_refused_and_record_nothing(
    client, workspace, database, settings, make_smtp_server
):
    server = make_smtp_server(security="none")
    outreach = await make_outreach(database, settings, workspace.workspace_id, smtp_port=server.port, leads=2)
    server.add_user(outreach.inbox_email, "smtp-secret")
    headers = workspace.headers()
    first, second = outreach.leads

    missing = await client.post(
        "/v1/leads/lead_01JZZZZZZZZZZZZZZZZZZZZZZZ/reply", headers=headers, json={"text": "x"}
    )
    assert missing.status_code == 404
    empty = await client.post(f"/v1/leads/{first.lead_id}/reply", headers=headers, json={"text": ""})
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "text"

    assert (
        await client.post("/v1/suppressions", headers=headers, json={"email": second.email})
    ).status_code == 201
    suppressed = await client.post(f"/v1/leads/{second.lead_id}/reply", headers=headers, json={"text": "x"})
    assert suppressed.status_code == 409 and "suppression list" in suppressed.json()["error"]["message"]

    server.stop()
    down = await client.post(f"/v1/leads/{first.lead_id}/reply", headers=headers, json={"text": "x"})
    assert down.status_code == 503, down.text
    assert "could not be reached" in down.json()["error"]["message"]
    assert await reply_count(database) == 0

    never = await make_outreach(database, settings, workspace.workspace_id)
    async with database.transaction() as session:  # a lead that was never emailed
        lead = Lead(
            workspace_id=workspace.workspace_id,
            livemode=True,
            campaign_id=never.campaign_id,
            email="new@prospect.test",
            timezone="UTC",
            timezone_source="explicit",
            custom_variables={},
        )
        session.add(lead)
        await session.flush()
        lead_id = lead.id
    fresh = await client.post(f"/v1/leads/{lead_id}/reply", headers=headers, json={"text": "x"})
    assert fresh.status_code == 409 and "no thread" in fresh.json()["error"]["message"]
