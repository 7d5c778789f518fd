"""The sending engine end to end: the API sets up, the worker sends through a real SMTP server (aiosmtpd; in
each security mode for the first test, STARTTLS for the rest) and Dovecot holds the Sent folder; a test clock
moves days forward."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from itertools import pairwise

import pytest

from imail.models import Lead
from imail.models.sending import Message, SequenceState
from imail.workers import sending as sending_worker
from tests.fixtures.security import each_security, encrypted
from tests.sending.conftest import freeze_api_clock

pytestmark = pytest.mark.usefixtures("sink")

STEP_1 = {
    "subject": "Hi {{first_name}}",
    "body": '<p>Hello {{first_name|there}} at {{company|your team}}, see <a href="https://acme.io/demo">the '
    "demo</a>.</p>",
}
STEP_2 = {"body": "<p>Following up, {{first_name}}.</p>", "delay": {"amount": 2, "unit": "days"}}


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


def parsed(received) -> object:
    return message_from_bytes(received.data, policy=default)


def by_recipient(sink) -> dict[str, list]:
    found: dict[str, list] = {}
    for received in sink.messages:
        found.setdefault(received.envelope_to[0], []).append(parsed(received))
    return found


@each_security
async def test_three_leads_two_steps_threaded_and_a_reply_stops_step_two(
    outreach, mailbox, sink, clock, security
):
    await outreach.connect_inbox(mailbox)
    assert (mailbox.smtp.security, mailbox.imap_security) == (security, security)
    campaign = await outreach.campaign([STEP_1, STEP_2])
    leads = [
        await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana", company="Globex"),
        await outreach.lead(campaign["id"], "bob@example.org", first_name="Bob"),
        await outreach.lead(campaign["id"], "cy@example.org"),
    ]
    await outreach.resume(campaign["id"])

    assert await outreach.drain() == 3
    first = by_recipient(sink)
    assert sorted(first) == ["ana@example.org", "bob@example.org", "cy@example.org"]
    ana = first["ana@example.org"][0]
    assert ana["Subject"] == "Hi Ana"
    assert ana["From"].addresses[0].addr_spec == mailbox.email
    assert ana["Message-ID"].endswith("@example.com>")
    assert ana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        "<https://t.acme.test/u/" in ana["List-Unsubscribe"]
        and f"<mailto:{mailbox.email}" in ana["List-Unsubscribe"]
    )
    html = ana.get_body(("html",)).get_content()
    text = ana.get_body(("plain",)).get_content()
    assert (
        "Hello Ana at Globex" in html
        and "https://t.acme.test/t/c/" in html
        and "https://acme.io/demo" not in html
    )
    assert "https://t.acme.test/t/o/" in html
    assert "Hello Ana at Globex" in text
    assert "Hello there at your team" in first["cy@example.org"][0].get_body(("plain",)).get_content()

    # Bob replies (the inbound reader marks the lead replied); then two days pass.
    async with outreach.database.transaction() as session:
        (await session.get(Lead, leads[1]["id"])).status = "replied"
    clock.advance(days=1)
    assert await outreach.drain() == 0
    clock.advance(days=1, minutes=1)
    assert await outreach.drain() == 2

    second = by_recipient(sink)
    assert len(second["bob@example.org"]) == 1
    for address in ("ana@example.org", "cy@example.org"):
        opener, follow_up = second[address]
        assert follow_up["Subject"] == f"Re: {opener['Subject']}"
        assert follow_up["In-Reply-To"] == opener["Message-ID"]
        assert follow_up["References"] == opener["Message-ID"]
    assert "Following up, Ana." in second["ana@example.org"][1].get_body(("plain",)).get_content()

    assert (await outreach.state(leads[0]["id"])).status == "finished"
    assert (await outreach.state(leads[1]["id"])).stop_reason == "replied"
    assert len(await outreach.events("email.sent")) == 5
    messages = (
        await outreach.client.get(f"/v1/campaigns/{campaign['id']}/messages", headers=outreach.headers)
    ).json()
    assert len(messages["data"]) == 5 and {m["step"] for m in messages["data"]} == {1, 2}
    assert all(m["status"] == "sent" and m["inbox_id"] == outreach.inbox_ids[0] for m in messages["data"])
    # Every SMTP session (login check, worker) and IMAP session (login check, the first sends looked for in
    # Sent): encrypted as the mode says.
    assert {m.tls for m in sink.messages} == set(sink.logins_over_tls(mailbox.email)) == {encrypted(security)}
    assert set(mailbox.imap.logins_over_tls(mailbox.email, at_least=2)) == {encrypted(security)}


async def test_a_closed_window_sends_nothing(outreach, mailbox, sink, clock):
    await outreach.connect_inbox(mailbox)
    window = {"timezone": "UTC", "days": ["mon"], "start": "09:00", "end": "10:00"}
    campaign = await outreach.campaign([STEP_1], send_window=window)
    lead = await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana")
    await outreach.resume(campaign["id"])
    clock.advance(days=1)  # Tuesday
    await outreach.drain()
    assert sink.messages == []
    state = await outreach.state(lead["id"])
    assert state.due_at.weekday() == 0 and state.due_at.hour == 9  # next Monday's window


async def test_a_daily_limit_of_n_sends_exactly_n_a_day(outreach, mailbox, sink, clock):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1], daily_limit=2)
    for i in range(5):
        await outreach.lead(campaign["id"], f"lead{i}@example.org", first_name=f"L{i}")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 2
    assert len(sink.messages) == 2
    clock.advance(days=1)
    assert await outreach.drain() == 2
    assert len(sink.messages) == 4


async def test_the_sending_gap_holds_between_two_sends_of_an_inbox(outreach, mailbox, sink, clock):
    await outreach.connect_inbox(mailbox, sending_gap_minutes=10)
    campaign = await outreach.campaign([STEP_1])
    for i in range(3):
        await outreach.lead(campaign["id"], f"lead{i}@example.org", first_name=f"L{i}")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 1
    clock.advance(minutes=9, seconds=59)
    assert await outreach.drain() == 0
    clock.advance(minutes=3)  # past the gap and its random extra (at most a quarter of the gap)
    assert await outreach.drain() == 1
    sent = sorted(m.sent_at for m in await outreach.rows(Message))
    assert sent[1] - sent[0] >= __import__("datetime").timedelta(minutes=10)


async def test_sends_waiting_out_the_gap_come_back_one_per_opening(outreach, mailbox, sink, clock):
    await outreach.connect_inbox(mailbox, sending_gap_minutes=10)
    campaign = await outreach.campaign([STEP_1])
    for i in range(12):
        await outreach.lead(campaign["id"], f"lead{i}@example.org", first_name=f"L{i}")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 1
    waiting = sorted(s.due_at for s in await outreach.rows(SequenceState, SequenceState.due_at.is_not(None)))
    # One is told the inbox's opening, the others one gap apart after it: not all eleven at the opening, where
    # ten would be read and put back again. (Beyond the first six, planned in full, they are booked without
    # reading their leads.)
    assert len(waiting) == 11
    assert all(later - earlier >= timedelta(minutes=10) for earlier, later in pairwise(waiting))
    clock.advance(seconds=(waiting[0] - clock()).total_seconds())
    assert await sending_worker.send_due(outreach.ctx) == 1  # examined: only the send told this opening
    assert len(sink.messages) == 2


async def test_a_waiting_campaign_books_its_due_first_steps_beyond_the_claim(outreach, mailbox, sink, clock):
    from imail.sending import service

    await outreach.connect_inbox(mailbox, sending_gap_minutes=10)
    campaign = await outreach.campaign([STEP_1])
    for i in range(6):
        await outreach.lead(campaign["id"], f"lead{i}@example.org", first_name=f"L{i}")
    await outreach.resume(campaign["id"])
    async with outreach.database.transaction() as session:
        claim = await service.claim(session, outreach.ctx.settings, "w1", now=clock(), limit=2)
    assert len(claim.jobs) == 1
    assert claim.examined == 6  # its share of two, then the four due beyond it, booked without a claim each
    waiting = sorted(s.due_at for s in await outreach.rows(SequenceState, SequenceState.due_at.is_not(None)))
    assert len(waiting) == 5 and waiting[0] > clock()
    assert all(later - earlier >= timedelta(minutes=10) for earlier, later in pairwise(waiting))


async def test_a_451_is_retried_and_sent_once(outreach, mailbox, sink, clock):
    answers = iter(["451 4.7.1 Greylisted, try again later"])
    sink.rcpt_hook = lambda address: next(answers, None)
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1])
    await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana")
    await outreach.resume(campaign["id"])
    await outreach.drain()
    assert sink.messages == []
    [message] = await outreach.rows(Message)
    assert message.status == "retry" and "451" in message.smtp_response
    clock.advance(minutes=2)
    await outreach.drain()
    assert len(sink.messages) == 1
    [message] = await outreach.rows(Message)
    assert message.status == "sent" and message.attempts == 2
    assert len(await outreach.events("email.sent")) == 1


async def test_a_550_for_an_address_bounces_and_suppresses_it(outreach, mailbox, sink, clock):
    sink.rcpt_hook = lambda address: "550 5.1.1 No such user" if address.startswith("gone@") else None
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1, STEP_2])
    gone = await outreach.lead(campaign["id"], "gone@example.org", first_name="Gone")
    await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana")
    await outreach.resume(campaign["id"])
    await outreach.drain()
    assert [m.envelope_to for m in sink.messages] == [["ana@example.org"]]
    [bounce] = await outreach.events("email.bounced.hard")
    assert bounce.data["email"] == "gone@example.org" and bounce.data["status_code"] == "550"
    assert (await outreach.lead_row(gone["id"])).status == "bounced"
    listed = (await outreach.client.get("/v1/suppressions", headers=outreach.headers)).json()["data"]
    assert [s["value"] for s in listed] == ["gone@example.org"]
    clock.advance(days=3)
    await outreach.drain()
    assert all(m.envelope_to != ["gone@example.org"] for m in sink.messages)


async def test_internationalized_addresses_go_out_in_idna_form_or_fail_alone(outreach, mailbox, sink):
    # The API accepts internationalized addresses (RFC 6531). A Unicode domain goes out in its IDNA form; a
    # Unicode local part would need SMTPUTF8: that one email fails, once, and the others go out.
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1, STEP_2])
    jorg = await outreach.lead(campaign["id"], "jörg@example.org", first_name="Jörg")
    await outreach.lead(campaign["id"], "ana@bücher.example", first_name="Ana")
    await outreach.lead(campaign["id"], "bo@example.org", first_name="Bo")
    await outreach.resume(campaign["id"])
    await outreach.drain()
    assert sorted(m.envelope_to[0] for m in sink.messages) == ["ana@xn--bcher-kva.example", "bo@example.org"]
    assert sorted(parsed(m)["To"] for m in sink.messages) == [
        "Ana <ana@xn--bcher-kva.example>",
        "Bo <bo@example.org>",
    ]
    [failed] = [m for m in await outreach.rows(Message) if m.lead_id == jorg["id"]]
    assert failed.status == "failed" and "needs SMTPUTF8" in failed.smtp_response
    assert (await outreach.state(jorg["id"])).stop_reason == "failed"
    assert len(await outreach.events("email.sent")) == 2


async def test_follow_ups_go_from_the_inbox_that_sent_step_one(outreach, make_mailbox, sink, clock):
    for prefix in ("ana", "bea", "cid"):
        await outreach.connect_inbox(make_mailbox(prefix))
    campaign = await outreach.campaign([STEP_1, STEP_2])
    for i in range(6):
        await outreach.lead(campaign["id"], f"lead{i}@example.org", first_name=f"L{i}")
    await outreach.resume(campaign["id"])
    await outreach.drain()
    firsts = {m.lead_id: m.inbox_id for m in await outreach.rows(Message)}
    assert sorted(list(firsts.values()).count(i) for i in outreach.inbox_ids) == [2, 2, 2]  # rotation
    clock.advance(days=2, minutes=1)
    await outreach.drain()
    for message in await outreach.rows(Message, Message.step_index == 1):
        assert message.inbox_id == firsts[message.lead_id]


async def test_suppressed_and_paused_leads_get_nothing(outreach, mailbox, sink, clock):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1])
    blocked = await outreach.lead(campaign["id"], "x@blocked.example", first_name="X")
    added = await outreach.client.post(
        "/v1/suppressions", headers=outreach.headers, json={"domain": "blocked.example"}
    )
    assert added.status_code == 201, added.text
    await outreach.resume(campaign["id"])
    await outreach.drain()
    assert sink.messages == []
    assert (await outreach.state(blocked["id"])).stop_reason == "suppressed"


async def test_pausing_a_campaign_takes_its_leads_out_of_the_queue(outreach, mailbox, sink, clock):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1])
    lead = await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana")
    assert (await outreach.state(lead["id"])).due_at is None  # a draft sends nothing
    await outreach.resume(campaign["id"])
    await outreach.client.post(f"/v1/campaigns/{campaign['id']}/pause", headers=outreach.headers)
    assert (await outreach.state(lead["id"])).due_at is None
    await outreach.drain()
    assert sink.messages == []
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 1


async def test_two_sending_loops_of_one_worker_send_each_email_once(outreach, mailbox, sink):
    """imail worker runs two send_due loops (workers/registry.py). On SQLite, which has no SKIP LOCKED, they
    must not claim the same states (that ended in a UNIQUE (lead, step) error every other round)."""
    import asyncio
    import dataclasses

    from imail.workers import sending as sending_worker
    from imail.workers.registry import WORKERS

    loops = next(spec.concurrency for spec in WORKERS if spec.name == "sending")
    assert loops >= 2
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1])
    for i in range(24):
        await outreach.lead(campaign["id"], f"lead{i}@example.org", first_name=f"L{i}")
    await outreach.resume(campaign["id"])
    ctx = dataclasses.replace(
        outreach.ctx, settings=outreach.ctx.settings.model_copy(update={"sending_batch_size": 5}), extra={}
    )

    async def loop() -> None:
        idle = 0
        while idle < 2:
            idle = 0 if await sending_worker.send_due(ctx) else idle + 1

    await asyncio.gather(*(loop() for _ in range(loops)))
    await sending_worker.smtp_pool(ctx).close()
    assert sorted(r.envelope_to[0] for r in sink.messages) == sorted(
        f"lead{i}@example.org" for i in range(24)
    )
    assert {m.status for m in await outreach.rows(Message)} == {"sent"}


async def _claim_stop_and_record(
    outreach,
    mailbox,
    clock,
    steps: list[dict],
    emails: list[str],
    stop: dict[str, str],
    replied: bool = False,
) -> list[dict]:
    """Claims the leads' first step, then stops the named leads' sequences (`stop`: lead email -> reason; with
    `replied` their leads are marked replied, as the inbound reader does) before the sends are recorded as
    accepted: what happens when a reply lands while the email is on the wire."""
    from imail.models.sending import SequenceState
    from imail.sending import service

    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign(steps)
    leads = [
        await outreach.lead(campaign["id"], email, first_name=email.split("@")[0].title()) for email in emails
    ]
    await outreach.resume(campaign["id"])
    async with outreach.database.transaction() as session:
        claim = await service.claim(session, outreach.ctx.settings, "w1", now=clock())
    assert len(claim.jobs) == len(emails)
    async with outreach.database.transaction() as session:
        for lead in leads:
            if lead["email"] in stop:
                if replied:
                    (await session.get(Lead, lead["id"])).status = "replied"
                service.stop_sequence(
                    await session.get(SequenceState, lead["id"]),
                    service.StopReason(stop[lead["email"]]),
                    clock(),
                )
    async with outreach.database.transaction() as session:
        await service.record_outcomes(
            session,
            outreach.ctx.settings,
            [service.Outcome(job.message_id, "sent", 250, "2.0.0 queued") for job in claim.jobs],
            now=clock(),
        )
    return leads


async def test_a_reply_that_lands_while_its_email_is_on_the_wire_keeps_the_sequence_stopped(
    outreach, mailbox, clock
):
    """Recording a send moves its sequence on only if the sequence is still `sending`: one stopped meanwhile
    (the inbound reader saw a reply to step 1's thread) is not put back in the queue for step 2."""
    replying, quiet = await _claim_stop_and_record(
        outreach,
        mailbox,
        clock,
        [STEP_1, STEP_2],
        ["ana@example.org", "bob@example.org"],
        {"ana@example.org": "replied"},
        replied=True,
    )

    stopped, going_on = await outreach.state(replying["id"]), await outreach.state(quiet["id"])
    assert (stopped.status, stopped.stop_reason, stopped.due_at) == ("stopped", "replied", None)
    assert (going_on.status, going_on.next_step) == ("scheduled", 1) and going_on.due_at > clock()
    assert {m.status for m in await outreach.rows(Message)} == {"sent"}
    assert {m.smtp_response for m in await outreach.rows(Message)} == {"2.0.0 queued"}
    assert len(await outreach.events("email.sent")) == 2
    assert (await outreach.lead_row(replying["id"])).status == "replied"


async def test_the_last_step_sent_completes_the_lead(outreach, mailbox, sink):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1])
    lead = await outreach.lead(campaign["id"], "ana@example.org", first_name="Ana")
    await outreach.resume(campaign["id"])
    assert await outreach.drain() == 1
    state = await outreach.state(lead["id"])
    assert (state.status, state.due_at, state.last_sent_at is not None) == ("finished", None, True)
    assert (await outreach.lead_row(lead["id"])).status == "completed"


async def test_a_last_step_recorded_after_its_sequence_was_stopped_leaves_the_lead_alone(
    outreach, mailbox, clock
):
    [lead] = await _claim_stop_and_record(
        outreach, mailbox, clock, [STEP_1], ["ana@example.org"], {"ana@example.org": "suppressed"}
    )

    assert (await outreach.state(lead["id"])).status == "stopped"
    assert (
        await outreach.lead_row(lead["id"])
    ).status == "active"  # not completed by a sequence that did not finish
    assert len(await outreach.events("email.sent")) == 1
