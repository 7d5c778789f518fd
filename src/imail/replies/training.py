"""Per-workspace reply models: label corrections teach the classifier.

Every `PATCH /v1/replies/{id}` that changes a label is kept (`reply_label_corrections`, with the text it
labelled). `imail replies train --workspace ws_…` fits a model on the shipped corpus plus that workspace's
corrections (the newest per reply, each counting as `CORRECTION_WEIGHT` corpus examples, so that a few
corrections can move a model trained on thousands) and stores it in the database, where every worker finds it:
the workspace's replies are classified with it from then on. `--drop` deletes it and the shipped model is used
again. Other workspaces are untouched. The temperature is the shipped model's (calibrated on the shipped
corpus; the corpus dominates).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from imail.errors import Conflict
from imail.kit.tenancy import Tenant
from imail.models import Reply
from imail.replies.classifier import (
    Example,
    ReplyClassifier,
    default_classifier,
    fit_model,
    load_examples,
    training_file,
)
from imail.replies.repository import CorrectionRepository, ReplyModels, WorkspaceCorrections
from imail.workspaces.service import get_workspace

CORRECTION_WEIGHT = 5.0


@dataclass(frozen=True)
class TrainedModel:
    workspace_id: str
    corrections: int
    examples: int
    trained_at: datetime
    size: int  # bytes stored


async def record_correction(
    session: AsyncSession, tenant: Tenant, reply: Reply, label: str, now: datetime
) -> None:
    """Keep a label correction (call before the reply's own label changes)."""
    session.add(
        CorrectionRepository(session, tenant).new(
            reply_id=reply.id,
            text=reply.reply_text or reply.text or "",
            label=label,
            previous_label=reply.label,
            previous_source=reply.label_source,
            created_at=now,
        )
    )


async def _workspace(session: AsyncSession, workspace_id: str) -> None:
    await get_workspace(session, workspace_id)  # 404 when there is none


async def train_workspace(session: AsyncSession, workspace_id: str, now: datetime) -> TrainedModel:
    """Fit and store the workspace's model from the shipped corpus and its corrections."""
    await _workspace(session, workspace_id)
    corrections = [
        row for row in await WorkspaceCorrections(session, workspace_id).latest() if row.text.strip()
    ]
    if not corrections:
        raise Conflict(
            f"Workspace {workspace_id} has no label corrections to learn from (PATCH /v1/replies/{{id}} "
            "makes them); it keeps the shipped model",
            "workspace",
        )
    corpus = load_examples(training_file())
    examples = corpus + [Example(row.text, row.label) for row in corrections]
    weights = [1.0] * len(corpus) + [CORRECTION_WEIGHT] * len(corrections)
    temperature = default_classifier().model.temperature
    # Fitting takes seconds of CPU: off the event loop.
    model = await asyncio.to_thread(fit_model, examples, weights=weights, temperature=temperature)
    data = model.to_bytes()
    await ReplyModels(session).save(workspace_id, data, len(corrections), len(examples), now)
    return TrainedModel(workspace_id, len(corrections), len(examples), now, len(data))


async def drop_workspace_model(session: AsyncSession, workspace_id: str) -> bool:
    """Delete the workspace's model (its replies go back to the shipped one). False if it had none."""
    await _workspace(session, workspace_id)
    return await ReplyModels(session).drop(workspace_id)


# A loaded model holds tens of MB of Python objects: keep the most recently used few per process.
MAX_LOADED_MODELS = 8
_loaded: OrderedDict[str, tuple[datetime, ReplyClassifier]] = OrderedDict()


async def own_classifier(session: AsyncSession, workspace_id: str) -> ReplyClassifier | None:
    """The workspace's own classifier if it trained one; None when the shipped one applies (a caller that
    holds the shipped model's labels already need not load it). Models are loaded once per process and
    trained_at is checked on every call, so a retrained or dropped model takes effect on the next batch."""
    models = ReplyModels(session)
    trained_at = await models.trained_at(workspace_id)
    if trained_at is None:
        _loaded.pop(workspace_id, None)
        return None
    cached = _loaded.get(workspace_id)
    if cached is not None and cached[0] == trained_at:
        _loaded.move_to_end(workspace_id)
        return cached[1]
    row = await models.get(workspace_id)
    if row is None:  # dropped between the two reads
        return None
    classifier = ReplyClassifier.from_bytes(row.model)
    _loaded[workspace_id] = (row.trained_at, classifier)
    _loaded.move_to_end(workspace_id)
    while len(_loaded) > MAX_LOADED_MODELS:
        _loaded.popitem(last=False)
    return classifier
