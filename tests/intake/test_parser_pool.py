"""A backlog parsed (and labelled) in a child process while the reader acts on the batch before: the same
outcomes as parsing in the worker, a workspace's own model still deciding its labels, a child that dies
replaced, and no child left behind by a worker killed with SIGKILL. Real Dovecot, real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from imail.intake import reader
from imail.intake.parser_pool import ParserPool, parse_fetched
from imail.intake.reader import Prepared
from imail.intake.repository import OurEmail
from imail.intake.service import Match
from imail.models import Lead, SequenceState
from imail.replies.classifier import Example, fit_model
from imail.replies.repository import ReplyModels
from imail.replies.verdict import assess, assess_locally
from imail.workers.imap_reader import inbound_pool
from tests.fixtures.inbound import FIRST_SUBJECT, dsn, newsletter, out_of_office, reply
from tests.intake.conftest import Mailroom, cursors, events, replies, row, suppressions

ROOT = Path(__file__).resolve().parents[2]
PHRASE = "zorblax quuxify frobnicate"  # words the shipped corpus has never seen: its model says neutral


def pooled(room: Mailroom, **overrides):
    """A worker whose every chunk goes to its parsing child."""
    return room.context(inbound_parse_processes=1, inbound_parse_pool_from=1, **overrides)


async def started(ctx) -> ParserPool:
    parser = inbound_pool(ctx).parser
    await parser.start()  # up before the first read: every chunk of it goes to the child
    assert parser.ready_child is not None and parser.ready_child != os.getpid()
    return parser


async def test_a_backlog_read_through_the_child_is_acted_on_as_in_the_worker(make_mailroom):
    room: Mailroom = await make_mailroom(leads=5)
    interested, unsubscribing, away, bounced, soft = room.outreach.leads
    room.reply_from(interested)
    room.reply_from(unsubscribing, text="Please remove me from your list.")
    back_on = (room.now + timedelta(days=10)).date()
    room.deliver(
        out_of_office(away.header, from_email=away.email, to_email=room.inbox_email, back_on=back_on)
    )
    room.deliver(dsn(bounced.header, recipient=bounced.email, to_email=room.inbox_email, status="5.1.1"))
    room.deliver(dsn(soft.header, recipient=soft.email, to_email=room.inbox_email, status="4.2.2"))
    room.deliver(newsletter(room.inbox_email))  # from nobody we wrote to

    ctx = pooled(room, inbound_fetch_batch=2)  # three chunks: read ahead while the first is acted on
    await started(ctx)
    assert await room.read(ctx) == 6

    labels = {r.lead_id: (r.label, r.auto_reply) for r in await replies(room.database)}
    assert labels == {
        interested.lead_id: ("interested", False),
        unsubscribing.lead_id: ("unsubscribe_request", False),
        away.lead_id: ("out_of_office", True),
    }
    statuses = [(await row(room.database, Lead, lead.lead_id)).status for lead in room.outreach.leads]
    assert statuses == ["replied", "unsubscribed", "active", "bounced", "active"]
    assert {(s.value, s.reason) for s in await suppressions(room.database)} == {
        (unsubscribing.email, "unsubscribed"),
        (bounced.email, "bounced"),
    }
    state = await row(room.database, SequenceState, away.lead_id)
    assert state.due_at is not None and state.due_at.date() >= back_on  # moved past the return
    assert [e.type for e in await events(room.database, "email.bounced.soft", "email.bounced.hard")] == [
        "email.bounced.hard",
        "email.bounced.soft",
    ]
    received = await events(room.database, "reply.received")
    assert {e.data["lead_id"] for e in received} == {interested.lead_id, unsubscribing.lead_id}


async def test_a_workspace_model_labels_its_replies_not_the_childs_shipped_one(make_mailroom, database):
    room: Mailroom = await make_mailroom(leads=2)
    # A model of the workspace's own, taught that the phrase books a meeting.
    examples = [Example(f"{PHRASE} {n}", "meeting_booked") for n in range(8)]
    examples += [Example(f"thanks, not now {n}", "not_interested") for n in range(8)]
    model = fit_model(examples, temperature=1.0)
    async with database.transaction() as session:
        await ReplyModels(session).save(
            room.outreach.workspace_id, model.to_bytes(), 1, len(examples), room.now
        )
    for lead in room.outreach.leads:
        room.reply_from(lead, text=PHRASE)
    ctx = pooled(room)
    await started(ctx)
    assert (await assess(PHRASE.encode())).label == "neutral"  # what the child's shipped model says

    assert await room.read(ctx) == 2

    assert {(r.label, r.label_source) for r in await replies(room.database)} == {("meeting_booked", "model")}


async def test_with_a_classifier_endpoint_the_child_only_parses():
    parser = ParserPool(1, 1)
    try:
        await parser.start()
        raw = reply("<x@imail.test>", from_email="p@prospect.test", to_email="me@imail.test")
        [(message, bounce, verdict)] = await parser.parse([raw], classify=False)
        assert verdict is None and message.subject == f"Re: {FIRST_SUBJECT}" and not bounce.is_bounce
        [(_, _, verdict)] = await parser.parse([raw], classify=True)
        assert verdict is not None and verdict.label == "interested"
    finally:
        parser.close()


async def test_what_the_child_returns_is_what_the_worker_would_have_parsed():
    raws = [
        reply("<a@imail.test>", from_email="p@prospect.test", to_email="me@imail.test"),
        out_of_office(
            "<b@imail.test>", from_email="q@prospect.test", to_email="me@imail.test", back_on=date(2031, 1, 6)
        ),
        dsn("<c@imail.test>", recipient="r@prospect.test", to_email="me@imail.test", status="5.1.1"),
        b"",  # unreadable: a result, not an error
    ]
    parser = ParserPool(1, 1)
    try:
        await parser.start()
        from_child = await parser.parse(raws, classify=True)
    finally:
        parser.close()
    for raw, (message, bounce, verdict) in zip(raws, from_child, strict=True):
        here, here_bounce = parse_fetched(raw)
        assert message == here and message.raw is None  # all but the stdlib tree, which stays behind
        assert bounce == here_bounce
        if bounce.is_bounce or here.error:
            assert verdict is None
        else:
            expected = await assess(here, bounce=here_bounce)
            assert (verdict.label, verdict.confidence, verdict.out_of_office, verdict.return_date) == (
                expected.label,
                expected.confidence,
                expected.out_of_office,
                expected.return_date,
            )


async def test_a_child_that_dies_is_replaced_and_its_chunk_parsed_in_the_worker():
    parser = ParserPool(1, 1)
    raw = reply("<a@imail.test>", from_email="p@prospect.test", to_email="me@imail.test")
    try:
        await parser.start()
        first = parser.ready_child
        assert first is not None
        os.kill(first, signal.SIGKILL)
        [(message, _, verdict)] = await parser.parse([raw], classify=True)  # the pool is found broken
        assert message.subject == f"Re: {FIRST_SUBJECT}" and verdict is None  # parsed here
        await parser.start()
        assert parser.ready_child not in (None, first)
        [(_, _, verdict)] = await parser.parse([raw], classify=True)
        assert verdict is not None  # the new child works
    finally:
        parser.close()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # exited (a zombie until whoever adopted it reaps it)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
async def test_a_worker_killed_with_sigkill_leaves_no_parsing_child_behind(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            from imail.intake.parser_pool import ParserPool

            async def main():
                parser = ParserPool(1, 1)
                await parser.start()
                print(parser.ready_child, flush=True)
                await asyncio.sleep(3600)

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 120)
        child = int(line)
        assert not _gone(child)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        for _ in range(600):  # it notices at once; the bound only keeps a broken build from hanging here
            if _gone(child):
                break
            await asyncio.sleep(0.1)
        assert _gone(child)
    finally:
        worker.kill()
        worker.wait()


def test_chunks_joined_into_one_batch_keep_each_message_its_own_match_and_label():
    message, bounce = parse_fetched(
        reply("<a@imail.test>", from_email="p@prospect.test", to_email="me@x.test")
    )
    label = assess_locally(message, bounce)
    ours = [OurEmail(f"msg_{n}", "p@prospect.test", "hello") for n in range(3)]
    first = Prepared({1: Match(ours[0], "header")}, {1: label}, [(7, message)], frozenset({0}))
    second = Prepared(
        {0: Match(ours[1], "dsn"), 2: Match(ours[2], "subject")}, {2: label}, [(9, message)], frozenset({1})
    )
    both = first.joined(3, second)  # the first chunk held three messages
    assert {i: m.message.id for i, m in both.matches.items()} == {1: "msg_0", 3: "msg_1", 5: "msg_2"}
    assert set(both.verdicts) == {1, 5}
    assert [uid for uid, _ in both.warm] == [7, 9] and both.dsns == frozenset({0, 4})


@pytest.mark.parametrize("processes", [0, 1])
async def test_a_message_that_breaks_a_batch_read_ahead_is_skipped_alone(
    make_mailroom, monkeypatch, processes
):
    room: Mailroom = await make_mailroom(leads=5)
    for lead in room.outreach.leads:
        text = "poison pill" if lead is room.outreach.leads[2] else "Sounds interesting, tell me more."
        room.reply_from(lead, text=text)
    real_prepare = reader.prepare_batch

    async def prepare_breaking_on_the_pill(ctx, inbox, items):  # stands in for a bug of ours on one message
        if any("poison pill" in item.message.text for item in items):
            raise RuntimeError("a bug in matching")
        return await real_prepare(ctx, inbox, items)

    monkeypatch.setattr(reader, "prepare_batch", prepare_breaking_on_the_pill)
    # Three chunks of two, prepared ahead of their turn (in the child or in the worker): the second breaks.
    ctx = room.context(inbound_fetch_batch=2, inbound_parse_processes=processes, inbound_parse_pool_from=1)
    await inbound_pool(ctx).parser.start()
    with capture_logs() as logs:
        assert await room.read(ctx) == 5

    skipped = [entry for entry in logs if entry["event"] == "inbound message skipped"]
    assert [entry["uids"] for entry in skipped] == [[3]]
    recorded = {r.lead_id for r in await replies(room.database)}
    assert recorded == {lead.lead_id for n, lead in enumerate(room.outreach.leads) if n != 2}
    [cursor] = (await cursors(room.database, room.outreach.inbox_id)).values()
    assert cursor.last_uid == 5  # past the skipped one: it is not read again
