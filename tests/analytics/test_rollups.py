"""Every analytics endpoint equals the counts of the raw events; CSV equals JSON; `rebuild` reproduces the
rollups."""

from __future__ import annotations

import csv
import io
from collections import Counter

from sqlalchemy import select

from imail.analytics.reports import INBOX_COLUMNS
from imail.analytics.rollups import rebuild
from imail.models.analytics import COUNTERS, AnalyticsCampaignDaily, AnalyticsDaily, AnalyticsRef
from tests.analytics.conftest import expected_rows, raw_events, tally

# The reference's stage names, and the counter each one reads.
FUNNEL = {
    "sent": "sent",
    "opened": "opened_unique",
    "replied": "replied",
    "interested": "interested",
    "meeting": "meeting_booked",
}


def _range(history) -> dict[str, str]:
    return {"from": history.start.isoformat(), "to": history.end.isoformat(), "timezone": "UTC"}


def _counts(body: dict) -> Counter:
    return Counter({c: body[c] for c in COUNTERS if body[c]})


async def _check_csv(client, headers, url, params, body, columns=COUNTERS) -> None:
    response = await client.get(url, headers=headers, params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["day", *columns]
    assert [r[0] for r in rows[1:]] == [d["day"] for d in body["days"]]
    assert [[int(x) for x in r[1:]] for r in rows[1:]] == [[d[c] for c in columns] for d in body["days"]]


async def _check_everything(client, workspace, history, rows) -> None:
    headers, params = workspace.headers(), _range(history)
    assert sum(1 for r in rows if r["counter"] == "sent") > 500  # the seed really is a few thousand events

    for campaign_id in history.campaign_ids:
        response = await client.get(f"/v1/analytics/campaigns/{campaign_id}", headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert _counts(body["totals"]) == tally(rows, campaign_id=campaign_id)[()]
        per_day = tally(rows, by=("day",), campaign_id=campaign_id)
        assert len(body["days"]) == (history.end - history.start).days + 1
        for day in body["days"]:
            assert _counts(day) == per_day.get(
                (__import__("datetime").date.fromisoformat(day["day"]),), Counter()
            ), day["day"]
        per_step = tally(rows, by=("step", "variant"), campaign_id=campaign_id)
        assert {(s["step"], s["variant"]): _counts(s) for s in body["steps"] if _counts(s)} == dict(per_step)
        await _check_csv(client, headers, f"/v1/analytics/campaigns/{campaign_id}", params, body)

    for inbox_id in history.inbox_ids:
        body = (await client.get(f"/v1/analytics/inboxes/{inbox_id}", headers=headers, params=params)).json()
        assert _counts(body["totals"]) == tally(rows, inbox_id=inbox_id)[()]
        await _check_csv(client, headers, f"/v1/analytics/inboxes/{inbox_id}", params, body, INBOX_COLUMNS)

    body = (await client.get("/v1/analytics/workspace", headers=headers, params=params)).json()
    assert _counts(body["totals"]) == tally(rows)[()]
    by_day = tally(rows, by=("day",))
    assert {d["day"]: _counts(d) for d in body["days"] if _counts(d)} == {
        k[0].isoformat(): v for k, v in by_day.items()
    }
    await _check_csv(client, headers, "/v1/analytics/workspace", params, body)

    for campaign_id in (None, history.campaign_ids[1]):
        query = {**params, **({"campaign_id": campaign_id} if campaign_id else {})}
        body = (await client.get("/v1/analytics/funnel", headers=headers, params=query)).json()
        expected = tally(rows, **({"campaign_id": campaign_id} if campaign_id else {}))[()]
        assert [s["stage"] for s in body["stages"]] == list(FUNNEL)
        assert [s["count"] for s in body["stages"]] == [expected[c] for c in FUNNEL.values()]
        assert body["totals"] == {stage: expected[c] for stage, c in FUNNEL.items()}
        await _check_csv(client, headers, "/v1/analytics/funnel", query, body, tuple(FUNNEL))


async def _table(database) -> list[tuple]:
    """Every rollup row of both tables (and the per-email memory), sorted."""
    async with database.transaction() as session:
        rows = (await session.execute(select(AnalyticsDaily))).scalars()
        fine = sorted(
            (
                r.workspace_id,
                r.livemode,
                r.campaign_id,
                str(r.day),
                r.step,
                r.variant,
                r.inbox_id,
                *(getattr(r, c) for c in COUNTERS),
            )
            for r in rows
        )
        rows = (await session.execute(select(AnalyticsCampaignDaily))).scalars()
        coarse = sorted(
            (
                r.workspace_id,
                r.livemode,
                r.campaign_id,
                str(r.day),
                r.step,
                r.variant,
                *(getattr(r, c) for c in COUNTERS),
            )
            for r in rows
        )
        refs = sorted(
            (
                r.workspace_id,
                r.livemode,
                r.ref_id,
                r.campaign_id,
                r.step,
                r.variant,
                r.inbox_id,
                str(r.day),
                r.opened,
                r.clicked,
                r.label,
            )
            for r in (await session.execute(select(AnalyticsRef))).scalars()
        )
        return [("fine", len(fine)), *fine, ("coarse", len(coarse)), *coarse, ("refs", len(refs)), *refs]


async def test_endpoints_equal_raw_event_counts_and_rebuild_reproduces_them(
    client, database, workspace, other_workspace, history
):
    """One seeded history (it takes a while to record event by event): every check runs on it."""
    rows = expected_rows(await raw_events(database, history.tenant))
    await _check_everything(client, workspace, history, rows)
    await _check_isolation(client, workspace, other_workspace, history)

    live = await _table(database)
    async with (
        database.transaction() as session
    ):  # wipe-and-recompute of everything, from the event log alone
        result = await rebuild(session)
    assert result["rows"] == live[0][1]
    assert await _table(database) == live
    await _check_everything(client, workspace, history, rows)

    async with database.transaction() as session:  # one workspace only leaves the others as they were
        await rebuild(session, history.tenant.workspace_id)
    assert await _table(database) == live


async def _check_isolation(client, workspace, other_workspace, history) -> None:
    params = _range(history)
    test_ledger = (
        await client.get("/v1/analytics/workspace", headers=workspace.headers(live=False), params=params)
    ).json()
    live = (await client.get("/v1/analytics/workspace", headers=workspace.headers(), params=params)).json()
    assert 0 < test_ledger["totals"]["sent"] < live["totals"]["sent"]
    campaign = history.campaign_ids[0]
    for headers in (other_workspace.headers(), workspace.headers(live=False)):
        response = await client.get(f"/v1/analytics/campaigns/{campaign}", headers=headers, params=params)
        assert response.status_code == 404, response.text
        response = await client.get(
            "/v1/analytics/funnel", headers=headers, params={**params, "campaign_id": campaign}
        )
        assert response.status_code == 404


async def test_a_repeated_send_keeps_what_its_email_already_counted(database, workspace):
    """`email.sent` refs are written without being read (insert-if-absent): a second `email.sent` for an email
    (a send settled again by the in-flight resolver) must neither reset the ref nor let a repeated open count
    as a new unique one, whether it lands in a later batch or in the same batch as that open."""
    from datetime import UTC, datetime

    from imail.analytics.rollups import apply_events
    from imail.kit.tenancy import Tenant

    tenant = Tenant(workspace.workspace_id, True)
    moment = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    ref = {
        "message_id": "msg_resent",
        "campaign_id": "cmp_resend",
        "step": 1,
        "variant": "A",
        "inbox_id": "inb_resend",
    }
    opened = (tenant, "email.opened", {**ref, "machine": False}, moment)
    sent = (tenant, "email.sent", ref, moment)
    for batch in ([sent, opened], [sent], [sent, opened]):
        async with database.transaction() as session:
            await apply_events(session, batch)

    async with database.transaction() as session:
        stored = (
            await session.execute(select(AnalyticsRef).where(AnalyticsRef.ref_id == "msg_resent"))
        ).scalar_one()
        daily = (
            await session.execute(select(AnalyticsDaily).where(AnalyticsDaily.campaign_id == "cmp_resend"))
        ).scalar_one()
    assert (stored.opened, stored.step, stored.inbox_id) == (1, 1, "inb_resend")
    assert (daily.sent, daily.opened, daily.opened_unique) == (3, 2, 1)
