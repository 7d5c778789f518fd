"""A seeded history of events, recorded through `record_event` with the event clock driven across days."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

import imail.events.service as event_service
from imail.db import Database
from imail.events.service import batched_events, record_event
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from imail.models import Event
from tests.fixtures.outreach import create_campaign, make_inbox

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
DAYS = 9
LABELS = ["interested", "not_interested", "meeting_booked", "neutral", "interested"]


@dataclass
class History:
    tenant: Tenant
    campaign_ids: list[str]
    inbox_ids: list[str]
    start: date
    end: date
    events: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def plan_history(
    rng: random.Random, campaign_ids: list[str], inbox_ids: list[str], messages: int
) -> list[tuple[datetime, str, dict]]:
    """Events of `messages` emails and their fates, spread over DAYS days, in time order."""
    planned: list[tuple[datetime, str, dict]] = []
    for _ in range(messages):
        sent_at = START + timedelta(minutes=rng.randrange(DAYS * 24 * 60 - 60 * 20))
        ref = {
            "message_id": new_id("msg"),
            "campaign_id": rng.choice(campaign_ids),
            "lead_id": new_id("lead"),
            "inbox_id": rng.choice(inbox_ids),
            "email": "x@example.test",
            "step": rng.randint(1, 3),
            "variant": rng.choice(["a", "b", None]),
        }
        planned.append((sent_at, "email.sent", ref))
        at = lambda hours, sent_at=sent_at: sent_at + timedelta(minutes=rng.randrange(1, int(hours * 60)))
        fate = rng.random()
        if fate < 0.06:
            planned.append((at(1), "email.bounced.hard", {**ref, "status_code": "5.1.1"}))
            continue
        if fate < 0.12:
            planned.append((at(2), "email.bounced.soft", {**ref, "category": "mailbox_full"}))
        planned.append((at(1), "email.delivered", ref))
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            planned.append(
                (at(30), "email.opened", {**ref, "machine": rng.random() < 0.3, "user_agent": "ua"})
            )
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            planned.append(
                (at(30), "email.clicked", {**ref, "url": "https://x.test/", "machine": rng.random() < 0.3})
            )
        if rng.random() < 0.08:
            planned.append(
                (at(20), "email.auto_replied", {**ref, "reply_id": new_id("rpl"), "out_of_office": True})
            )
        if rng.random() < 0.04:
            planned.append((at(30), "lead.unsubscribed", {**ref, "source": "one_click"}))
        if rng.random() < 0.25:
            reply_id = new_id("rpl")
            replied_at = at(40)
            planned.append(
                (
                    replied_at,
                    "reply.received",
                    {
                        "reply_id": reply_id,
                        "message_id": ref["message_id"],
                        "campaign_id": ref["campaign_id"],
                        "lead_id": ref["lead_id"],
                        "inbox_id": ref["inbox_id"],
                        "from_email": "x@example.test",
                    },
                )
            )
            moment = replied_at
            for _ in range(rng.choice([1, 1, 2])):  # a classification, sometimes a correction after
                moment += timedelta(minutes=rng.randrange(1, 600))
                planned.append(
                    (
                        moment,
                        "reply.classified",
                        {
                            "reply_id": reply_id,
                            "lead_id": ref["lead_id"],
                            "campaign_id": ref["campaign_id"],
                            "label": rng.choice(LABELS),
                            "confidence": 0.9,
                        },
                    )
                )
    planned.sort(key=lambda e: e[0])
    # distinct, increasing instants: the log's order is the order they were recorded in
    return [
        (moment + timedelta(microseconds=i), kind, data) for i, (moment, kind, data) in enumerate(planned)
    ]


async def record_history(
    database: Database,
    tenant: Tenant,
    planned: list[tuple[datetime, str, dict]],
    monkeypatch: pytest.MonkeyPatch,
    per_transaction: int = 50,
    batched: bool = False,
) -> None:
    """Event by event, or (`batched`) each transaction's events written together as the sending and inbound
    workers do; both must count the same."""
    clock = {"now": START}
    with monkeypatch.context() as patched:
        patched.setattr(event_service, "utcnow", lambda: clock["now"])
        for start in range(0, len(planned), per_transaction):
            async with database.transaction() as session, AsyncExitStack() as stack:
                if batched:
                    await stack.enter_async_context(batched_events(session))
                for moment, kind, data in planned[start : start + per_transaction]:
                    clock["now"] = moment
                    await record_event(session, tenant, kind, data)


@pytest.fixture
async def history(
    client, database: Database, workspace, other_workspace, monkeypatch: pytest.MonkeyPatch
) -> History:
    tenant = Tenant(workspace.workspace_id, True)
    inbox_ids = [
        await make_inbox(database, workspace.workspace_id, email=f"s{i}@acme.test") for i in range(2)
    ]
    campaign_ids = [
        (await create_campaign(client, workspace.headers(), inbox_ids, name=f"c{i}"))["id"] for i in range(3)
    ]
    rng = random.Random(20261123)
    planned = plan_history(rng, campaign_ids, inbox_ids, messages=550)
    # noise that must never show: the test ledger of this workspace, and another workspace
    noise = plan_history(rng, campaign_ids, inbox_ids, messages=40)
    await record_history(database, Tenant(workspace.workspace_id, False), noise, monkeypatch)
    await record_history(database, Tenant(other_workspace.workspace_id, True), noise, monkeypatch)
    half = len(planned) // 2
    await record_history(database, tenant, planned[:half], monkeypatch)
    await record_history(database, tenant, planned[half:], monkeypatch, batched=True)
    return History(
        tenant,
        campaign_ids,
        inbox_ids,
        START.date(),
        START.date() + timedelta(days=DAYS),
        events=len(planned),
    )


# --- the expected numbers, counted straight from the raw event log (independently of imail.analytics) -------


async def raw_events(database: Database, tenant: Tenant) -> list[Event]:
    async with database.transaction() as session:
        stmt = (
            select(Event)
            .where(Event.workspace_id == tenant.workspace_id, Event.livemode == tenant.livemode)
            .order_by(Event.created_at, Event.id)
        )
        return list((await session.execute(stmt)).scalars())


def expected_rows(events: list[Event]) -> list[dict[str, Any]]:
    """One dict per counted thing: its campaign, step, variant, inbox, day and which counter it adds to."""
    sent: dict[str, dict] = {}
    first_open: set[str] = set()
    first_click: set[str] = set()
    replies: dict[str, dict] = {}
    last_label: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    simple = {
        "email.sent": "sent",
        "email.delivered": "delivered",
        "email.bounced.hard": "bounced_hard",
        "email.bounced.soft": "bounced_soft",
        "email.auto_replied": "auto_replied",
        "lead.unsubscribed": "unsubscribed",
    }
    for e in events:
        d, day = e.data, e.created_at.date()
        if e.type.startswith("email.") or e.type == "lead.unsubscribed":
            where = {
                "campaign_id": d["campaign_id"],
                "step": d["step"],
                "variant": d["variant"],
                "inbox_id": d["inbox_id"],
                "day": day,
            }
        if e.type == "email.sent":
            sent[d["message_id"]] = where
        if e.type in simple:
            rows.append({**where, "counter": simple[e.type]})
        for kind, firsts in (("opened", first_open), ("clicked", first_click)):
            if e.type == f"email.{kind}":
                rows.append({**where, "counter": kind})
                if d["machine"]:
                    rows.append({**where, "counter": f"{kind}_machine"})
                elif d["message_id"] not in firsts:
                    firsts.add(d["message_id"])
                    rows.append({**where, "counter": f"{kind}_unique"})
        if e.type == "reply.received":
            replies[d["reply_id"]] = {**sent[d["message_id"]], "day": day}
            rows.append({**replies[d["reply_id"]], "counter": "replied"})
        if e.type == "reply.classified":
            last_label[d["reply_id"]] = d["label"]
    for reply_id, label in last_label.items():
        if label in ("interested", "meeting_booked"):
            rows.append({**replies[reply_id], "counter": label})
    return rows


def tally(rows: list[dict[str, Any]], *, by: tuple[str, ...] = (), **match: Any) -> dict[tuple, Counter]:
    out: dict[tuple, Counter] = defaultdict(Counter)
    for row in rows:
        if all(row[k] == v for k, v in match.items()):
            out[tuple(row[k] for k in by)][row["counter"]] += 1
    return out
