"""A crash costs seconds: the claims of a worker that stopped beating are taken over after
IMAIL_WORKER_DEAD_SECONDS, not after the claim's lease; `/v1/status/full` shows them meanwhile; outcomes are
recorded in small groups as they come. Driven step by step with the injected clock."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from imail.models import Lead
from imail.models.sending import Message
from imail.sending import service
from imail.sending.repository import SendQueue
from imail.status import service as status
from imail.workers import sending as sending_worker
from imail.workers.repository import HeartbeatRepository
from tests.sending.conftest import freeze_api_clock

STEP = {"subject": "Hi {{first_name}}", "body": "<p>Hello {{first_name|there}}.</p>"}


async def _beat(outreach, clock, *workers: str) -> None:
    async with outreach.database.transaction() as session:
        for worker in workers:
            await HeartbeatRepository(session).beat(worker, "host", 1, clock())


async def test_a_dead_workers_claims_are_taken_over_within_seconds_and_status_shows_them(
    outreach, mailbox, sink, clock, monkeypatch
):
    freeze_api_clock(monkeypatch, clock)
    monkeypatch.setattr("imail.status.service.utcnow", clock)
    ctx = outreach.ctx
    settings = ctx.settings
    assert settings.sending_lease_seconds == 300 and settings.worker_dead_seconds == 20  # the defaults
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign(
        [STEP, {"subject": None, "body": "b2", "delay": {"amount": 2, "unit": "days"}}]
    )
    for name in ("ana", "bea", "cy"):
        await outreach.lead(campaign["id"], f"{name}@example.org", first_name=name.title())
    await outreach.resume(campaign["id"])

    await _beat(outreach, clock, "alive", "dead")
    async with outreach.database.transaction() as session:
        [alive_job] = (await service.claim(session, settings, "alive", now=clock(), limit=1)).jobs
    async with outreach.database.transaction() as session:
        dead_jobs = (await service.claim(session, settings, "dead", now=clock())).jobs
    assert len(dead_jobs) == 2
    # The dead worker's first email was accepted (and the acceptance marked) just before it died; its second
    # was never handed over.
    assert [o.kind for o in await sending_worker.deliver(ctx, dead_jobs[:1])] == ["sent"]

    clock.advance(seconds=10)
    await _beat(outreach, clock, "alive", "dead")
    assert await sending_worker.resolve_in_flight(ctx) == 0  # both alive: nothing taken
    assert (await status.check_sending(outreach.database, settings, None)).status == "ok"

    clock.advance(seconds=settings.worker_dead_seconds + 1)  # "dead" stops beating; far inside the lease
    await _beat(outreach, clock, "alive")
    component = await status.check_sending(outreach.database, settings, None)
    assert component.status == "degraded" and "2 emails" in component.detail
    full = await status.full_status(outreach.database, None, _NoLimiter(), settings)
    assert full.status == "degraded" and full.components["sending"].status == "degraded"
    assert full.operations is not None and full.operations.claims_held_by_dead_workers == 2
    assert full.operations.sending_lag_seconds >= 31  # claimed 31 s ago and not yet sent

    assert await sending_worker.resolve_in_flight(ctx) == 2
    rows = {m.to_email: m for m in await outreach.rows(Message)}
    accepted, requeued = (rows[job.to_email] for job in dead_jobs)
    assert accepted.status == "sent" and "accepted by the SMTP server" in accepted.smtp_response
    assert requeued.status == "retry" and requeued.attempts == 0
    assert rows[alive_job.to_email].status == "sending"  # the live worker keeps its claim
    assert (await status.check_sending(outreach.database, settings, None)).status == "ok"

    # The live worker finishes its own; the requeued one goes out once, from another claim.
    await sending_worker.deliver(ctx, [alive_job], record=_recorder(outreach, clock))
    await outreach.drain()
    recipients = Counter(r.envelope_to[0] for r in sink.messages)
    assert recipients == {"ana@example.org": 1, "bea@example.org": 1, "cy@example.org": 1}
    assert {m.status for m in await outreach.rows(Message)} == {"sent"}
    assert {lead.status for lead in await outreach.rows(Lead)} == {"active"}  # step 2 is scheduled
    assert sorted(e.data["message_id"] for e in await outreach.events("email.sent")) == sorted(
        m.id for m in await outreach.rows(Message)
    )


async def test_outcomes_are_recorded_in_small_groups_as_they_come(
    outreach, mailbox, sink, clock, monkeypatch
):
    """An inbox's 25 emails of one claim are recorded in groups of at most RECORD_EVERY, not after the last
    one."""
    freeze_api_clock(monkeypatch, clock)
    ctx = outreach.ctx
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP])
    for n in range(25):
        await outreach.lead(campaign["id"], f"lead{n}@example.org")
    await outreach.resume(campaign["id"])
    async with outreach.database.transaction() as session:
        jobs = (await service.claim(session, ctx.settings, "w", now=clock())).jobs
    assert len(jobs) == 25

    groups: list[int] = []
    record = _recorder(outreach, clock)

    async def counting(outcomes):
        groups.append(len(outcomes))
        await record(outcomes)

    await sending_worker.deliver(ctx, jobs, record=counting)
    assert sum(groups) == 25 and max(groups) <= sending_worker.RECORD_EVERY and len(groups) >= 3
    assert {m.status for m in await outreach.rows(Message)} == {"sent"}


def _recorder(outreach, clock):
    async def record(outcomes):
        async with outreach.database.transaction() as session:
            await service.record_outcomes(session, outreach.ctx.settings, outcomes, now=clock())

    return record


class _NoLimiter:
    degraded = False


def test_the_takeover_bound_is_seconds_not_the_lease(settings):
    """A dead worker is noticed after IMAIL_WORKER_DEAD_SECONDS plus one resolver pass (registry
    intervals)."""
    from imail.workers.registry import WORKERS

    intervals = {spec.name: spec.interval for spec in WORKERS}
    bound = timedelta(seconds=settings.worker_dead_seconds + intervals["sending_in_doubt"])
    assert intervals["heartbeat"] * 3 <= settings.worker_dead_seconds
    assert bound <= timedelta(seconds=30) < timedelta(seconds=settings.sending_lease_seconds)


async def test_a_delivery_report_confirms_an_unknown_attempt(outreach, mailbox, sink, clock, monkeypatch):
    """Handed over as its worker died and nothing confirmed it: `unknown`; a positive delivery report read
    later makes it `sent` (its sequence had already moved on)."""
    freeze_api_clock(monkeypatch, clock)
    ctx = outreach.ctx
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP])
    await outreach.lead(campaign["id"], "ana@example.org")
    await outreach.resume(campaign["id"])
    async with outreach.database.transaction() as session:
        [job] = (await service.claim(session, ctx.settings, "gone", now=clock())).jobs
    async with outreach.database.transaction() as session:
        await SendQueue(session).mark_handed([(job.message_id, job.message_id_header)])
    clock.advance(seconds=ctx.settings.worker_dead_seconds + 1)  # "gone" never beat at all
    assert await sending_worker.resolve_in_flight(ctx) == 1
    [message] = await outreach.rows(Message)
    assert message.status == "unknown"
    async with outreach.database.transaction() as session:
        [row] = (await SendQueue(session).messages([message.id], lock=True)).values()
        assert service.confirm_unknown(row, "a delivery report: 2.0.0", clock())
        assert not service.confirm_unknown(row, "twice", clock())
    [message] = await outreach.rows(Message)
    assert message.status == "sent" and "delivery report" in message.smtp_response
