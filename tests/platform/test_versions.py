"""Imail-Version pinning: resolution, echo, errors, and endpoints a pinned snapshot predates."""

from __future__ import annotations

from datetime import date

import pytest

from imail.errors import InvalidVersion
from imail.kit import versions


@pytest.mark.parametrize(
    ("header", "snapshot"),
    [
        (None, date(2026, 12, 7)),
        ("", date(2026, 12, 7)),
        ("2026-03-10", date(2026, 3, 10)),
        ("2026-04-21", date(2026, 3, 10)),
        ("2026-04-22", date(2026, 4, 22)),
        ("2026-05-09", date(2026, 4, 22)),
        ("2026-05-10", date(2026, 5, 10)),
        ("2026-12-05", date(2026, 5, 10)),
        ("2026-12-06", date(2026, 12, 6)),
        ("2030-01-01", date(2026, 12, 7)),
        # Before v1 went stable: the first snapshot (the reference's own example is 2026-03-01).
        ("2026-03-01", date(2026, 3, 10)),
        ("2026-03-09", date(2026, 3, 10)),
        ("2025-12-31", date(2026, 3, 10)),
        (" 2026-04-22 ", date(2026, 4, 22)),
    ],
)
def test_a_date_pins_to_the_newest_snapshot_on_or_before_it(header, snapshot):
    assert versions.resolve(header) == snapshot


@pytest.mark.parametrize(
    "header", ["yesterday", "2026-13-01", "2026-02-30", "2026-3-10", "20260310", "2026-03-10T00:00"]
)
def test_malformed_dates_are_invalid(header):
    with pytest.raises(InvalidVersion):
        versions.resolve(header)


NEW_ON_2026_12_07 = {"lead.unsubscribed", "inbox.sending_paused", "job.completed"}


def test_registry_gates_bulk_and_the_newer_events():
    assert not versions.endpoint_available(date(2026, 3, 10), "POST", "/v1/leads/bulk")
    assert versions.endpoint_available(date(2026, 4, 22), "POST", "/v1/leads/bulk")
    assert versions.endpoint_available(date(2026, 3, 10), "GET", "/v1/keys")
    assert versions.events_unavailable(date(2026, 4, 22)) == {
        "email.bounced.soft",
        "warmup.threshold_paused",
        "api.deprecation_warning",
        *NEW_ON_2026_12_07,
    }
    assert versions.events_unavailable(date(2026, 5, 10)) == {"api.deprecation_warning", *NEW_ON_2026_12_07}
    assert versions.events_unavailable(date(2026, 12, 6)) == NEW_ON_2026_12_07
    assert versions.events_unavailable(versions.LATEST) == frozenset()
    assert not versions.endpoint_available(date(2026, 5, 10), "GET", "/v1/changelog")


async def test_responses_echo_the_snapshot_used(client, workspace):
    pinned = await client.get("/v1/keys", headers=workspace.headers(**{"Imail-Version": "2026-04-30"}))
    assert pinned.status_code == 200
    assert pinned.headers["imail-version"] == "2026-04-22"
    default = await client.get("/v1/keys", headers=workspace.headers())
    assert default.headers["imail-version"] == versions.LATEST.isoformat() == "2026-12-07"


async def test_the_references_own_example_pins_to_the_first_snapshot(client, workspace):
    response = await client.get("/v1/campaigns", headers=workspace.headers(**{"Imail-Version": "2026-03-01"}))
    assert response.status_code == 200
    assert response.headers["imail-version"] == "2026-03-10"


async def test_invalid_version_is_400_in_contract_shape(client, workspace):
    response = await client.get("/v1/keys", headers=workspace.headers(**{"Imail-Version": "2026-02-30"}))
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_version"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_a_route_newer_than_the_pin_is_404(app, client, workspace):
    from fastapi import APIRouter

    from imail.kit.version_gate import version_gate

    probe = APIRouter(prefix="/v1", dependencies=[__import__("fastapi").Depends(version_gate)])

    @probe.post("/leads/bulk", include_in_schema=False)
    async def bulk_probe():
        return {"ok": True}

    app.include_router(probe)
    old = await client.post("/v1/leads/bulk", headers=workspace.headers(**{"Imail-Version": "2026-04-01"}))
    assert old.status_code == 404 and old.json()["error"]["code"] == "not_found"
    new = await client.post("/v1/leads/bulk", headers=workspace.headers(**{"Imail-Version": "2026-04-22"}))
    # The real route (mounted before the probe) answers now: past the gate, its body check refuses the empty
    # body.
    assert new.status_code in (200, 400) and new.json().get("error", {}).get("code") != "not_found"
