"""Reply classification without network or downloads: phrase rules first, then a logistic regression model.

The model (`imail.replies.model`) is trained by `python -m imail.replies.train` on the labelled replies
shipped in `imail/replies/data/train.jsonl` (English, German, French, Spanish, Portuguese, Dutch, Italian) and
ships as `imail/replies/data/model.json.gz`; nothing is trained when the server starts. A workspace can have
its own model, fitted on that corpus plus its label corrections (`imail replies train --workspace …`, see
`imail.replies.training`); the shipped model stays the default.

`confidence` is the model's calibrated probability of its label, a fixed 0.95 when a phrase rule decided, or
0.97 for an out-of-office auto-reply. `unsubscribe` is the safety net: set when the label is
`unsubscribe_request`, and also when another label won but the model still gives an unsubscribe reading at
least `UNSUBSCRIBE_THRESHOLD` probability (the address is suppressed either way: losing an opt-out is a
compliance failure).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

from imail.mail.parsing import extract_reply_text, fold
from imail.mail.reply_rules import rule_label
from imail.replies.model import MAX_TEXT_CHARS, LogisticModel, TrainingSettings, corpus_digest, features

Label = Literal[
    "interested",
    "not_interested",
    "meeting_booked",
    "out_of_office",
    "wrong_person",
    "unsubscribe_request",
    "neutral",
]
LABELS: tuple[str, ...] = get_args(Label)
Source = Literal["rules", "model", "auto_reply", "empty", "remote", "bounce"]

RULE_CONFIDENCE = 0.95
AUTO_REPLY_CONFIDENCE = 0.97
# An unsubscribe reading this probable suppresses the address even when another label is on top.
UNSUBSCRIBE_THRESHOLD = 0.25
__all__ = ["LABELS", "MAX_TEXT_CHARS", "Classification", "Example", "ReplyClassifier", "default_classifier"]


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    language: str = ""
    group: int | None = None  # copies of one written reply (dressed differently) share a group


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float
    source: Source
    evidence: list[str] = field(default_factory=list)  # the rule phrase, or the features that weighed most
    unsubscribe: bool = False  # suppress the address: an unsubscribe label, or a strong unsubscribe reading


def load_examples(path: str | Path) -> list[Example]:
    """Rows of a JSONL file: {"text": …, "label": …, "language": …}."""
    examples = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("label") not in LABELS or not isinstance(row.get("text"), str):
                raise ValueError(f"{path}:{number}: needs a text and a label among {', '.join(LABELS)}")
            examples.append(Example(row["text"], row["label"], row.get("language", ""), row.get("group")))
    return examples


def _describe(feature: str) -> str:
    kind, value = feature[0], feature[2:]
    if kind == "k":
        return f"[{value}]"
    if kind == "q":
        return "[" + value.replace(">", "] … [") + "]"
    return value.replace("_", " ").replace("^ ", "")


class ReplyClassifier:
    """Rules, then the model, on a reply's new text (see `imail.replies.verdict` for whole messages)."""

    def __init__(self, model: LogisticModel) -> None:
        self.model = model

    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Example],
        settings: TrainingSettings | None = None,
        temperature: float | None = None,
    ) -> ReplyClassifier:
        return cls(fit_model(examples, settings=settings, temperature=temperature))

    @classmethod
    def from_file(cls, path: str | Path) -> ReplyClassifier:
        return cls.from_examples(load_examples(path))

    @classmethod
    def from_bytes(cls, data: bytes) -> ReplyClassifier:
        return cls(LogisticModel.from_bytes(data))

    def probabilities(self, text: str) -> tuple[dict[str, float], list[str]]:
        """Each label's calibrated probability for a reply's new text, and the features that weighed most."""
        found = features(text)
        logits, known = self.model.logits(found)
        labels = self.model.labels
        if not any(
            f.startswith("w:") and len(f) > 3 for f in known
        ):  # not one known word: no language to go by
            return {label: 1.0 / len(labels) for label in labels}, []
        probabilities = dict(zip(labels, self.model.probabilities(logits), strict=True))
        top = labels.index(max(probabilities, key=probabilities.__getitem__))
        margin = {
            f: self.model.weights[f][top] - max(x for c, x in enumerate(self.model.weights[f]) if c != top)
            for f in known
            if f[0] in "wbkq"
        }
        evidence: list[str] = []
        for f, weight in sorted(margin.items(), key=lambda kv: (-kv[1], kv[0])):
            if weight <= 0 or len(evidence) == 4:
                break
            if _describe(f) not in evidence:
                evidence.append(_describe(f))
        return probabilities, evidence

    def classify(self, text: str, use_rules: bool = True) -> Classification:
        text = (text or "").strip()
        if not text:
            return Classification("neutral", 1.0 / len(LABELS), "empty")
        probabilities, evidence = self.probabilities(text)
        unsubscribe_reading = probabilities.get("unsubscribe_request", 0.0) >= UNSUBSCRIBE_THRESHOLD
        if use_rules:
            decided = rule_label(fold(text[:MAX_TEXT_CHARS]))
            if decided:
                label = decided[0]
                return Classification(
                    label,
                    RULE_CONFIDENCE,
                    "rules",
                    [decided[1]],
                    unsubscribe=label == "unsubscribe_request" or unsubscribe_reading,
                )
        if len(set(probabilities.values())) == 1:
            return Classification("neutral", round(probabilities["neutral"], 4), "model", [])
        label = max(probabilities, key=lambda item: (probabilities[item], -LABELS.index(item)))
        return Classification(
            label,
            round(probabilities[label], 4),
            "model",
            evidence,
            unsubscribe=label == "unsubscribe_request" or unsubscribe_reading,
        )


def fit_model(
    examples: Sequence[Example],
    *,
    weights: Sequence[float] | None = None,
    settings: TrainingSettings | None = None,
    temperature: float | None = None,
) -> LogisticModel:
    """A model fitted on `examples` (each text's quoted history and signature cut first, as at
    classification). Without a `temperature`, one fifth of the examples (whole groups) is set aside to fit it,
    then the model is refitted on all."""
    texts = [extract_reply_text(e.text) for e in examples]
    labels = [e.label for e in examples]
    if temperature is None:
        group = [e.group if e.group is not None else i for i, e in enumerate(examples)]
        fitting = [i for i in range(len(examples)) if group[i] % 5]
        aside = [i for i in range(len(examples)) if not group[i] % 5]
        trial = LogisticModel.fit(
            [texts[i] for i in fitting],
            [labels[i] for i in fitting],
            LABELS,
            settings,
            [weights[i] for i in fitting] if weights is not None else None,
        )
        temperature = trial.calibrate([texts[i] for i in aside], [labels[i] for i in aside])
    model = LogisticModel.fit(texts, labels, LABELS, settings, weights)
    model.temperature = temperature
    model.meta = {"corpus": corpus_digest([(e.text, e.label) for e in examples]), "examples": len(examples)}
    return model


def data_file(name: str) -> Path:
    return Path(str(resources.files("imail.replies") / "data" / name))


def training_file() -> Path:
    return data_file("train.jsonl")


def model_file() -> Path:
    return data_file("model.json.gz")


@lru_cache(maxsize=1)
def default_classifier() -> ReplyClassifier:
    """The shipped classifier (loaded once per process)."""
    return ReplyClassifier.from_bytes(model_file().read_bytes())


def classify_text(text: str) -> Classification:
    return default_classifier().classify(text)
