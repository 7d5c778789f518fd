"""A campaign's `skip_verification`: leads whose last verification is one it skips are not emailed; their
sequence stops with reason `verification`. Never-verified leads are emailed whatever the option."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from imail.models import Lead
from tests.sending.conftest import freeze_api_clock

pytestmark = pytest.mark.usefixtures("sink")

STEP_1 = {"subject": "Hi {{first_name|there}}", "body": "<p>Hello</p>"}


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch, clock):
    freeze_api_clock(monkeypatch, clock)


async def verified(database, lead_id: str, status: str | None) -> None:
    """A verification outcome, as the verification job stores it (the job itself: tests/jobs)."""
    async with database.transaction() as session:
        await session.execute(
            update(Lead).where(Lead.id == lead_id).values(verification_status=status, verification_reasons=[])
        )


@pytest.mark.parametrize(
    ("option", "emailed"),
    [
        ("none", {"valid", "risky", "invalid", "unknown", "never"}),
        ("invalid", {"valid", "risky", "unknown", "never"}),
        ("risky", {"valid", "unknown", "never"}),
    ],
)
async def test_skip_verification(outreach, mailbox, sink, database, option, emailed):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1], skip_verification=option)
    assert campaign["skip_verification"] == option
    leads = {}
    for status in ("valid", "risky", "invalid", "unknown", "never"):
        lead = await outreach.lead(campaign["id"], f"{status}@example.org")
        leads[status] = lead["id"]
        await verified(database, lead["id"], None if status == "never" else status)
    await outreach.resume(campaign["id"])
    await outreach.drain()
    assert {m.envelope_to[0].split("@")[0] for m in sink.messages} == emailed
    for status, lead_id in leads.items():
        state = await outreach.state(lead_id)
        if status in emailed:
            assert state.stop_reason is None, status
        else:
            assert (state.status, state.stop_reason) == ("stopped", "verification"), status


async def test_the_option_can_be_changed(outreach, mailbox, sink):
    await outreach.connect_inbox(mailbox)
    campaign = await outreach.campaign([STEP_1])
    assert campaign["skip_verification"] == "none"
    url = f"/v1/campaigns/{campaign['id']}"
    changed = await outreach.client.patch(url, headers=outreach.headers, json={"skip_verification": "risky"})
    assert changed.status_code == 200 and changed.json()["skip_verification"] == "risky"
    bad = await outreach.client.patch(url, headers=outreach.headers, json={"skip_verification": "all"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "skip_verification"
    null = await outreach.client.patch(url, headers=outreach.headers, json={"skip_verification": None})
    assert null.status_code == 400
