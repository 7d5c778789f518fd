"""The reply model: multinomial logistic regression over features that carry across languages, in pure Python.

Features of the folded text (lower case, accents removed, digits as 0, addresses and links as placeholders):
words, word pairs, character 3–5-grams inside words (shared stems: "interess" in German, Italian and
Portuguese), and cross-language concepts (`imail.replies.lexicon`: "danke", "obrigado", "bedankt" → thanks)
with concept pairs ("not … interested"). Each reply's feature vector is scaled to unit length, so a long reply
is not surer than a short one merely for having more words.

Training is averaged stochastic gradient descent (the mean of the weights at the end of each epoch is what
generalises; no other regularisation is needed at this size), deterministic for a given seed and corpus, in
plain Python (no numpy: the server trains per-workspace models with `imail replies train`). Weights are kept
as one row per feature; features whose weights all stay near zero are dropped, which keeps the shipped file
small. Probabilities are the softmax of the logits divided by a temperature fitted on a held-out part of the
corpus (`calibrate`), so that a reported confidence of 0.8 is right about 80 % of the time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from imail.mail.parsing import fold
from imail.replies.lexicon import concepts_of

CONCEPT_WINDOW = 3  # concept pairs: concepts at most this many words apart, in order
MAX_TEXT_CHARS = 4000  # a reply's new text beyond this adds nothing but time
FORMAT_VERSION = 1
SKIP_GRADIENT = 0.01  # a label whose probability is already this close to right is not updated

_EMAIL = re.compile(r"\S+@\S+\.\w+")
_URL = re.compile(r"https?://\S+|www\.\S+|\b[a-z0-9-]+\.(com|io|me|app|co)/\S+")
_TOKEN = re.compile(r"[a-z0]+|[?!]")


def normalise(text: str) -> str:
    text = _URL.sub(" zurlz ", text[:MAX_TEXT_CHARS])
    text = _EMAIL.sub(" zemailz ", text)
    return re.sub(r"\d+", "0", fold(text))


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
        found.add(f"n:{min(len(tokens), 40) // 4}")  # length, coarsely: "ok thanks" is not a long refusal
    for position, (index, meaning) in enumerate(concepts):
        found.update("k:" + concept for concept in meaning)
        for later, following in concepts[position + 1 :]:
            if later - index > CONCEPT_WINDOW:
                break
            found.update(f"q:{a}>{b}" for a in meaning for b in following)
    return found


def corpus_digest(rows: Sequence[tuple[str, str]]) -> str:
    """A fingerprint of (text, label) rows: a shipped model names the corpus it was trained on."""
    digest = hashlib.sha256()
    for text, label in rows:
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class TrainingSettings:
    epochs: int = 8
    learning_rate: float = 0.5
    prune_below: float = 0.01  # features whose largest weight magnitude stays under this are not kept
    seed: int = 27


class LogisticModel:
    """Weights per feature (one per label) and a bias per label; `probabilities` is a calibrated softmax."""

    def __init__(
        self,
        labels: Sequence[str],
        weights: dict[str, list[float]],
        bias: list[float],
        temperature: float = 1.0,
        meta: dict | None = None,
    ) -> None:
        self.labels = list(labels)
        self.weights = weights
        self.bias = bias
        self.temperature = temperature
        self.meta = meta or {}

    # --- training ---

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        label_set: Sequence[str],
        settings: TrainingSettings | None = None,
        sample_weights: Sequence[float] | None = None,
    ) -> LogisticModel:
        settings = settings or TrainingSettings()
        if not texts:
            raise ValueError("no training examples")
        index: dict[str, int] = {}
        rows: list[tuple[list[int], float, int, float]] = []
        classes = list(label_set)
        for position, (text, label) in enumerate(zip(texts, labels, strict=True)):
            found = sorted(features(text))
            ids = [index.setdefault(f, len(index)) for f in found]
            value = 1.0 / math.sqrt(len(ids)) if ids else 0.0
            weight = sample_weights[position] if sample_weights is not None else 1.0
            rows.append((ids, value, classes.index(label), weight))
        size, k = len(index), len(classes)
        w = [[0.0] * size for _ in range(k)]  # current weights, one list per label
        total = [[0.0] * size for _ in range(k)]  # sum of the weights at the end of each epoch
        bias, bias_total = [0.0] * k, [0.0] * k
        rng = random.Random(settings.seed)
        order = list(range(len(rows)))
        for epoch in range(settings.epochs):
            rng.shuffle(order)
            rate = settings.learning_rate / (1 + epoch) ** 0.5
            for row in order:
                ids, value, target, weight = rows[row]
                logits = [bias[c] + value * sum(map(wc.__getitem__, ids)) for c, wc in enumerate(w)]
                top = max(logits)
                exps = [math.exp(z - top) for z in logits]
                norm = sum(exps)
                for c in range(k):
                    gradient = exps[c] / norm - (1.0 if c == target else 0.0)
                    if -SKIP_GRADIENT < gradient < SKIP_GRADIENT:
                        # already right for this label: most of an epoch's work, once the model is fit
                        continue
                    step = rate * weight * gradient * value
                    wc = w[c]
                    for i in ids:
                        wc[i] -= step
                    bias[c] -= rate * weight * gradient
            for c in range(k):
                tc, wc = total[c], w[c]
                for i in range(size):
                    tc[i] += wc[i]
                bias_total[c] += bias[c]
        weights: dict[str, list[float]] = {}
        names = sorted(index, key=index.__getitem__)
        for i, feature in enumerate(names):
            averaged = [total[c][i] / settings.epochs for c in range(k)]
            if max(abs(x) for x in averaged) >= settings.prune_below:
                weights[feature] = [round(x, 4) for x in averaged]
        averaged_bias = [round(b / settings.epochs, 4) for b in bias_total]
        return cls(classes, weights, averaged_bias)

    # --- inference ---

    def logits(self, found: set[str]) -> tuple[list[float], list[str]]:
        """Each label's score for a reply's features, and which of them the model knows."""
        weights = self.weights
        known = [f for f in found if f in weights]
        if not known:
            return list(self.bias), known
        value = 1.0 / math.sqrt(len(found))
        sums = map(
            sum, zip(*(weights[f] for f in known), strict=True)
        )  # column sums in C, not a loop per weight
        return [b + value * total for b, total in zip(self.bias, sums, strict=True)], known

    def probabilities(self, logits: list[float]) -> list[float]:
        top = max(logits)
        exps = [math.exp((z - top) / self.temperature) for z in logits]
        norm = sum(exps)
        return [e / norm for e in exps]

    def calibrate(self, texts: Sequence[str], labels: Sequence[str]) -> float:
        """Fit the temperature that minimises the negative log-likelihood of `texts` (not seen in
        training)."""
        rows = [
            (self.logits(features(t))[0], self.labels.index(label))
            for t, label in zip(texts, labels, strict=True)
        ]

        def loss(temperature: float) -> float:
            total = 0.0
            for logits, target in rows:
                top = max(logits)
                norm = sum(math.exp((z - top) / temperature) for z in logits)
                total -= (logits[target] - top) / temperature - math.log(norm)
            return total

        low, high = 0.05, 10.0  # golden-section search on log temperature: the loss is unimodal in it
        a, b = math.log(low), math.log(high)
        ratio = (math.sqrt(5) - 1) / 2
        for _ in range(40):
            c, d = b - ratio * (b - a), a + ratio * (b - a)
            if loss(math.exp(c)) < loss(math.exp(d)):
                b = d
            else:
                a = c
        self.temperature = round(math.exp((a + b) / 2), 4)
        return self.temperature

    # --- storage ---

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT_VERSION,
            "labels": self.labels,
            "bias": self.bias,
            "temperature": self.temperature,
            "meta": self.meta,
            "weights": self.weights,
        }
        return gzip.compress(json.dumps(body, separators=(",", ":"), sort_keys=True).encode(), mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes) -> LogisticModel:
        body = json.loads(gzip.decompress(data))
        if body.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown reply model format {body.get('format')!r}")
        return cls(body["labels"], body["weights"], body["bias"], body["temperature"], body.get("meta") or {})
