"""Bad queries are structured 400s naming the parameter; scopes; CSV cells cannot run as formulas."""

from __future__ import annotations

import pytest

from imail.analytics.reports import to_csv
from imail.kit.csv_export import safe_cell
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"timezone": "Europe/Paris"}, "timezone"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-03-01"}, "from"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"format": "xlsx"}, "format"),
    ],
)
async def test_bad_queries_are_400s_naming_the_parameter(client, workspace, params, field):
    response = await client.get("/v1/analytics/workspace", headers=workspace.headers(), params=params)
    assert_error(response, 400, field, case=params)


async def test_unknown_objects_are_404(client, workspace):
    for url in ("/v1/analytics/campaigns/cmp_nope", "/v1/analytics/inboxes/inb_nope"):
        response = await client.get(url, headers=workspace.headers())
        assert response.status_code == 404, response.text
        assert response.json()["error"]["message"]


async def test_scope_family_analytics(client, database, workspace):
    other_scope = await make_key(database, workspace.workspace_id, scopes=["campaigns:read"])
    assert (await client.get("/v1/analytics/workspace", headers=bearer(other_scope))).status_code == 403
    reader = await make_key(database, workspace.workspace_id, scopes=["analytics:read"])
    response = await client.get("/v1/analytics/workspace", headers=bearer(reader))
    assert response.status_code == 200
    body = response.json()
    assert body["timezone"] == "UTC" and len(body["days"]) == 30 and body["totals"]["sent"] == 0
    assert (await client.get("/v1/analytics/workspace")).status_code == 401


def test_csv_cells_never_start_a_formula():
    for dangerous in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", '=HYPERLINK("http://x")'):
        assert safe_cell(dangerous).startswith("'"), dangerous
    assert safe_cell(12) == "12" and safe_cell("cmp_1") == "cmp_1"
    text = to_csv({"days": [{"day": "=cmd", "sent": "-2"}]}, ("sent",))
    assert text.splitlines() == ["day,sent", "'=cmd,'-2"]
