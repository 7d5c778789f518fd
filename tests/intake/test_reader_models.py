"""The reader classifies a workspace's replies with that workspace's own model once one is trained, and with
the shipped model again once it is dropped; a reply that reads as an opt-out is suppressed whatever its
label."""

from __future__ import annotations

from imail.kit.tenancy import Tenant
from imail.models import Lead, Reply
from imail.replies.repository import CorrectionRepository
from imail.replies.training import drop_workspace_model, train_workspace
from tests.intake.conftest import Mailroom, replies, row, suppressions

PHRASE = "zorblax quuxify frobnicate"  # unknown to the shipped corpus


async def label_of(room: Mailroom, lead) -> Reply:
    [found] = [r for r in await replies(room.database) if r.lead_id == lead.lead_id]
    return found


async def test_a_workspace_model_labels_that_workspaces_replies_until_dropped(make_mailroom):
    room: Mailroom = await make_mailroom(leads=3)
    first, second, third = room.outreach.leads
    workspace_id = room.outreach.workspace_id

    room.reply_from(first, text=PHRASE)
    assert await room.read(room.context()) == 1
    assert (await label_of(room, first)).label == "neutral"  # the shipped model knows none of these words

    async with room.database.transaction() as session:  # what PATCH /v1/replies/{id} keeps
        corrections = CorrectionRepository(session, Tenant(workspace_id, True))
        for _ in range(2):
            session.add(
                corrections.new(
                    reply_id=None,
                    text=PHRASE,
                    label="meeting_booked",
                    previous_label="neutral",
                    previous_source="model",
                    created_at=room.now,
                )
            )
    async with room.database.transaction() as session:
        trained = await train_workspace(session, workspace_id, room.now)
    assert trained.corrections == 2

    room.reply_from(second, text=PHRASE)
    room.later(room.settings.inbound_idle_recheck + 1)
    assert await room.read(room.context()) == 1
    stored = await label_of(room, second)
    assert (stored.label, stored.label_source) == ("meeting_booked", "model")
    assert (await row(room.database, Lead, second.lead_id)).interest_status == "meeting_booked"

    async with room.database.transaction() as session:
        assert await drop_workspace_model(session, workspace_id) is True
    room.reply_from(third, text=PHRASE)
    room.later(room.settings.inbound_idle_recheck + 1)
    assert await room.read(room.context()) == 1
    assert (await label_of(room, third)).label == "neutral"
    assert await suppressions(room.database) == []
