"""Reply classification without network or downloads: phrase rules first, then a naive Bayes model.

The model is a multinomial naive Bayes over binary features of the folded text (lower case, accents removed,
digits as 0, addresses and links as placeholders): words, word pairs, character 3–5-grams inside words, and
cross-language concepts (`imail.replies.lexicon`: "danke", "merci", "gracias" → thanks) with concept pairs
("not … interested"). Each kind of feature has a fixed weight in the score (`FEATURE_WEIGHTS`: the many,
correlated character n-grams count for less; weights, smoothing and temperature were chosen by 5-fold
cross-validation on the training file alone, never on the held-out replies). It is trained on first use from
the labelled replies shipped in `imail/replies/data/train.jsonl` (English, German, French, Spanish), in well
under a second, deterministically.

`confidence` is the model's posterior tempered by the number of features (naive Bayes posteriors are otherwise
near 0 or 1 for any text; the temperature was chosen so that mean confidence matches cross-validated accuracy
on the training file), a fixed 0.95 when a phrase rule decided, or 0.97 for an out-of-office auto-reply.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

from imail.mail.inbound import fold
from imail.replies.lexicon import concepts_of
from imail.replies.rules import rule_label

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

# How much each kind of feature counts: w word, b word pair, c character n-gram, k concept, q concept pair.
FEATURE_WEIGHTS = {"w": 1.0, "b": 1.5, "c": 0.25, "k": 2.0, "q": 1.0}
CONCEPT_WINDOW = 3  # concept pairs: concepts at most this many words apart, in order
TEMPERATURE_FEATURES = 16.0  # posterior temperature: one degree per this many features present
RULE_CONFIDENCE = 0.95
AUTO_REPLY_CONFIDENCE = 0.97
MAX_TEXT_CHARS = 4000  # a reply's new text beyond this adds nothing but time


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    language: str = ""


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float
    source: Source
    evidence: list[str] = field(default_factory=list)  # the rule phrase, or the features that weighed most


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
            examples.append(Example(row["text"], row["label"], row.get("language", "")))
    return examples


# --- features ---------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"\S+@\S+\.\w+")
_URL = re.compile(r"https?://\S+|www\.\S+")
_TOKEN = re.compile(r"[a-z0]+|[?!]")


def normalise(text: str) -> str:
    text = _URL.sub(" zurlz ", text[:MAX_TEXT_CHARS])
    text = _EMAIL.sub(" zemailz ", text)
    return re.sub(r"\d", "0", fold(text))


def features(text: str) -> set[str]:
    """Binary features: words, word pairs, character 3–5-grams inside words, concepts, concept pairs."""
    tokens = _TOKEN.findall(normalise(text))
    found: set[str] = set()
    concepts: list[tuple[int, set[str]]] = []
    for index, token in enumerate(tokens):
        found.add("w:" + token)
        if index:
            found.add(f"b:{tokens[index - 1]}_{token}")
        if token in ("?", "!"):
            continue
        padded = f" {token} "
        for size in (3, 4, 5):
            for start in range(len(padded) - size + 1):
                found.add("c:" + padded[start : start + size])
        meaning = concepts_of(token)
        if meaning:
            concepts.append((index, meaning))
    if tokens:
        found.add("b:^_" + tokens[0])
    for position, (index, meaning) in enumerate(concepts):
        found.update("k:" + concept for concept in meaning)
        for later, following in concepts[position + 1 :]:
            if later - index > CONCEPT_WINDOW:
                break
            found.update(f"q:{a}>{b}" for a in meaning for b in following)
    return found


# --- the model ----------------------------------------------------------------------------------------------


class NaiveBayes:
    """Multinomial naive Bayes over binary features, Lidstone-smoothed, with uniform class priors."""

    def __init__(self, alpha: float = 0.3, featurize: Callable[[str], set[str]] | None = None) -> None:
        self.alpha = alpha
        self.featurize = featurize or features
        self.labels: list[str] = []
        self.log_likelihood: dict[str, dict[str, float]] = {}
        self.log_unseen: dict[str, float] = {}
        self.vocabulary: set[str] = set()

    def fit(self, examples: Iterable[Example]) -> NaiveBayes:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for example in examples:
            counts[example.label].update(self.featurize(example.text))
        if not counts:
            raise ValueError("no training examples")
        self.labels = sorted(counts)
        self.vocabulary = set().union(*counts.values())
        size = len(self.vocabulary)
        for label in self.labels:
            total = sum(counts[label].values()) + self.alpha * size
            self.log_likelihood[label] = {
                f: math.log((n + self.alpha) / total) for f, n in counts[label].items()
            }
            self.log_unseen[label] = math.log(self.alpha / total)
        return self

    def scores(self, found: set[str]) -> dict[str, float]:
        known = found & self.vocabulary
        return {
            label: sum(
                self.log_likelihood[label].get(f, self.log_unseen[label]) * FEATURE_WEIGHTS[f[0]]
                for f in known
            )
            for label in self.labels
        }

    def predict(self, text: str) -> tuple[str, float, list[str]]:
        """Label, tempered posterior, and the known features that favoured the label most."""
        found = self.featurize(text) & self.vocabulary
        if not any(f.startswith("w:") and len(f) > 3 and not f[2:].isdigit() for f in found):
            return "neutral", 1.0 / len(LABELS), []  # not one known word: no language to go by
        scores = self.scores(found)
        temperature = max(1.0, len(found) / TEMPERATURE_FEATURES)
        top = max(scores.values())
        weights = {label: math.exp((score - top) / temperature) for label, score in scores.items()}
        label = max(weights, key=lambda item: (weights[item], -self.labels.index(item)))
        confidence = weights[label] / sum(weights.values())
        margin = {
            f: self.log_likelihood[label].get(f, self.log_unseen[label])
            - max(
                self.log_likelihood[other].get(f, self.log_unseen[other])
                for other in self.labels
                if other != label
            )
            for f in found
            if f.startswith(("w:", "b:", "k:", "q:"))
        }
        ranked = sorted(margin.items(), key=lambda kv: -kv[1] * FEATURE_WEIGHTS[kv[0][0]])
        evidence: list[str] = []
        for f, weight in ranked:
            if weight <= 0 or len(evidence) == 4:
                break
            if _describe(f) not in evidence:
                evidence.append(_describe(f))
        return label, confidence, evidence


def _describe(feature: str) -> str:
    kind, value = feature[0], feature[2:]
    if kind == "k":
        return f"[{value}]"
    if kind == "q":
        return "[" + value.replace(">", "] … [") + "]"
    return value.replace("_", " ").replace("^ ", "")


class ReplyClassifier:
    """Rules, then the model, on a reply's new text (see `imail.replies.verdict` for whole messages)."""

    def __init__(self, model: NaiveBayes) -> None:
        self.model = model

    @classmethod
    def from_examples(cls, examples: Sequence[Example]) -> ReplyClassifier:
        return cls(NaiveBayes().fit(examples))

    @classmethod
    def from_file(cls, path: str | Path) -> ReplyClassifier:
        return cls.from_examples(load_examples(path))

    def classify(self, text: str, use_rules: bool = True) -> Classification:
        text = (text or "").strip()
        if not text:
            return Classification("neutral", 1.0 / len(LABELS), "empty")
        if use_rules:
            decided = rule_label(fold(text[:MAX_TEXT_CHARS]))
            if decided:
                return Classification(decided[0], RULE_CONFIDENCE, "rules", [decided[1]])
        label, confidence, evidence = self.model.predict(text)
        return Classification(label, round(confidence, 4), "model", evidence)


def training_file() -> Path:
    return Path(str(resources.files("imail.replies") / "data" / "train.jsonl"))


@lru_cache(maxsize=1)
def default_classifier() -> ReplyClassifier:
    """The classifier trained on the shipped replies (once per process)."""
    return ReplyClassifier.from_file(training_file())


def classify_text(text: str) -> Classification:
    return default_classifier().classify(text)
