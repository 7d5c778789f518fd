"""Label corrections teach a workspace's own model: kept on PATCH /v1/replies/{id}, trained with
`imail replies train --workspace …` (run as an operator would, against the test database), used for that
workspace only, dropped with one command. Real database, both backends."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.models import Lead, ReplyLabelCorrection, ReplyModel, SequenceState, Suppression
from imail.replies import training
from imail.replies.classifier import LABELS, default_classifier
from imail.replies.labels import apply_label
from imail.replies.model import LogisticModel
from imail.replies.repository import ReplyModels, WorkspaceCorrections
from imail.replies.training import MAX_LOADED_MODELS, own_classifier
from tests.conftest import TEST_SECRET
from tests.fixtures.factories import make_workspace
from tests.fixtures.inbound import make_outreach, make_reply

PHRASE = "zorblax quuxify frobnicate"  # words the shipped corpus has never seen


async def kept(database) -> list[ReplyLabelCorrection]:
    async with database.transaction() as session:
        stmt = select(ReplyLabelCorrection).order_by(ReplyLabelCorrection.created_at, ReplyLabelCorrection.id)
        return list((await session.execute(stmt)).scalars())


@pytest.fixture
def cli_env(database_url) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")}
    env.update(IMAIL_DATABASE_URL=database_url, IMAIL_SECRET_KEY=TEST_SECRET)
    return env


def replies_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imail.cli", "replies", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


async def test_a_correction_is_kept_with_the_text_it_labelled(
    client, workspace, other_workspace, database, settings
):
    outreach = await make_outreach(database, settings, workspace.workspace_id, leads=1)
    reply_id, _ = await make_reply(
        database, outreach, outreach.leads[0], label="interested", text="Who are you?"
    )
    headers = workspace.headers()

    assert (
        await client.patch(f"/v1/replies/{reply_id}", headers=headers, json={"label": "neutral"})
    ).status_code == 200
    [first] = await kept(database)
    assert (first.reply_id, first.text, first.label, first.previous_label, first.previous_source) == (
        reply_id,
        "Who are you?",
        "neutral",
        "interested",
        "model",
    )
    assert (first.workspace_id, first.livemode) == (workspace.workspace_id, True)

    # The same correction again adds nothing; a different one is kept too, and only the newest is in force.
    await client.patch(f"/v1/replies/{reply_id}", headers=headers, json={"label": "neutral"})
    assert len(await kept(database)) == 1
    await client.patch(f"/v1/replies/{reply_id}", headers=headers, json={"label": "not_interested"})
    rows = await kept(database)
    assert [(r.label, r.previous_label, r.previous_source) for r in rows] == [
        ("neutral", "interested", "model"),
        ("not_interested", "neutral", "manual"),
    ]
    async with database.transaction() as session:
        assert [r.label for r in await WorkspaceCorrections(session, workspace.workspace_id).latest()] == [
            "not_interested"
        ]
        assert await WorkspaceCorrections(session, other_workspace.workspace_id).latest() == []

    # Refused corrections keep nothing.
    bad = await client.patch(f"/v1/replies/{reply_id}", headers=headers, json={"label": "maybe"})
    assert bad.status_code == 400
    foreign = await client.patch(
        f"/v1/replies/{reply_id}", headers=other_workspace.headers(), json={"label": "neutral"}
    )
    assert foreign.status_code == 404
    assert len(await kept(database)) == 2


async def test_train_use_and_drop_a_workspace_model(
    client, workspace, other_workspace, database, settings, cli_env, tmp_path
):
    ws = workspace.workspace_id
    outreach = await make_outreach(database, settings, ws, leads=3)
    for lead in outreach.leads:
        reply_id, _ = await make_reply(database, outreach, lead, label="neutral", text=PHRASE)
        patched = await client.patch(
            f"/v1/replies/{reply_id}", headers=workspace.headers(), json={"label": "meeting_booked"}
        )
        assert patched.status_code == 200, patched.text
    async with database.transaction() as session:
        assert await own_classifier(session, ws) is None
    assert default_classifier().classify(PHRASE).label == "neutral"

    trained = await asyncio.to_thread(
        replies_cli, "train", "--workspace", ws, "--json", env=cli_env, cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr
    body = json.loads(trained.stdout)
    assert body["workspace_id"] == ws and body["corrections"] == 3 and body["examples"] > 3

    async with database.transaction() as session:
        stored = await session.get(ReplyModel, ws)
        assert stored is not None and stored.corrections == 3
        own = await own_classifier(session, ws)
        assert own is not None and own is not default_classifier()
        assert await own_classifier(session, ws) is own  # loaded once, not per reply
        result = own.classify(PHRASE)
        assert (result.label, result.source) == ("meeting_booked", "model")
        assert (
            own.classify("Please unsubscribe me.").label == "unsubscribe_request"
        )  # the rules still come first
        # Another workspace keeps the shipped model.
        assert await own_classifier(session, other_workspace.workspace_id) is None

    dropped = await asyncio.to_thread(
        replies_cli, "drop-model", "--workspace", ws, "--json", env=cli_env, cwd=tmp_path
    )
    assert dropped.returncode == 0, dropped.stderr
    assert json.loads(dropped.stdout) == {"workspace_id": ws, "dropped": True}
    async with database.transaction() as session:
        assert await session.get(ReplyModel, ws) is None
        assert await own_classifier(session, ws) is None
    again = await asyncio.to_thread(
        replies_cli, "train", "--workspace", ws, "--drop", env=cli_env, cwd=tmp_path
    )
    assert again.returncode == 0 and "had no model of its own" in again.stdout


async def test_training_refuses_what_it_cannot_do(workspace, database, cli_env, tmp_path):
    unknown = await asyncio.to_thread(
        replies_cli, "train", "--workspace", "ws_nope", env=cli_env, cwd=tmp_path
    )
    assert unknown.returncode == 1 and "No workspace ws_nope" in unknown.stderr
    nothing = await asyncio.to_thread(
        replies_cli, "train", "--workspace", workspace.workspace_id, env=cli_env, cwd=tmp_path
    )
    assert nothing.returncode == 1 and "no label corrections" in nothing.stderr
    missing = await asyncio.to_thread(
        replies_cli, "drop-model", "--workspace", "ws_nope", env=cli_env, cwd=tmp_path
    )
    assert missing.returncode == 1 and "No workspace ws_nope" in missing.stderr
    async with database.transaction() as session:
        assert (await session.execute(select(ReplyModel))).scalars().all() == []


async def test_an_unsubscribe_reading_suppresses_whatever_the_label(database, settings, workspace):
    outreach = await make_outreach(database, settings, workspace.workspace_id, leads=1)
    lead = outreach.leads[0]
    async with database.transaction() as session:
        row = await session.get(Lead, lead.lead_id)
        state = await session.get(SequenceState, lead.lead_id)
        await apply_label(
            session,
            Tenant(workspace.workspace_id, True),
            row,
            state,
            "not_interested",
            utcnow(),
            unsubscribe=True,
        )
    async with database.transaction() as session:
        row = await session.get(Lead, lead.lead_id)
        assert (row.interest_status, row.status) == ("not_interested", "unsubscribed")
        state = await session.get(SequenceState, lead.lead_id)
        assert (state.status, state.stop_reason) == ("stopped", "unsubscribed")
        [suppressed] = (await session.execute(select(Suppression))).scalars().all()
        assert (suppressed.value, suppressed.reason) == (lead.email, "unsubscribed")


async def test_a_process_keeps_only_the_most_recently_used_workspace_models(database):
    tiny = LogisticModel(
        LABELS, {"w:hello": [1.0] + [0.0] * (len(LABELS) - 1)}, [0.0] * len(LABELS)
    ).to_bytes()
    ids = [
        (await make_workspace(database, "surge", f"W{n}")).workspace_id for n in range(MAX_LOADED_MODELS + 1)
    ]
    async with database.transaction() as session:
        for workspace_id in ids:
            await ReplyModels(session).save(workspace_id, tiny, 1, 1, utcnow())
    async with database.transaction() as session:
        loaded = [await own_classifier(session, workspace_id) for workspace_id in ids]
        assert all(c is not None and c is not default_classifier() for c in loaded)
        cached = training._loaded
        assert ids[0] not in cached and ids[-1] in cached and len(cached) <= MAX_LOADED_MODELS
        assert await own_classifier(session, ids[-1]) is loaded[-1]  # still cached
