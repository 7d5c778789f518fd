#!/usr/bin/env python3
"""Reply classifier benchmark: held-out accuracy and speed of the shipped classifier against a plain baseline.

In one run, on the committed labelled replies (tests/data/replies):

  baseline  multinomial naive Bayes over words only, no rules (the textbook model on the same training split)
  measured  the shipped classifier: phrase rules, then naive Bayes over words, word pairs, character n-grams
            and cross-language concepts (imail.replies.classifier)

Both are trained on train.jsonl only and scored on heldout.jsonl, which training never sees. Also printed:
5-fold cross-validated accuracy on the training split (what the model's settings were chosen on), training
time, and replies classified per second. Takes a few seconds; no network, no database.

    .venv/bin/python bench/reply_classifier.py
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

from imail.mail.inbound import fold
from imail.replies.classifier import Example, NaiveBayes, ReplyClassifier, load_examples

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "replies"


def baseline_features(text: str) -> set[str]:
    return {"w:" + word for word in re.findall(r"[a-z0-9']+", fold(text))}


def accuracy(predict, examples: list[Example]) -> float:
    return sum(predict(e.text) == e.label for e in examples) / len(examples)


def train_baseline(examples: list[Example]):
    model = NaiveBayes(alpha=1.0, featurize=baseline_features).fit(examples)  # same code, words only
    return lambda text: model.predict(text)[0]


def cross_validated(examples: list[Example], folds: int = 5) -> float:
    right = 0
    for k in range(folds):
        train = [e for i, e in enumerate(examples) if i % folds != k]
        test = [e for i, e in enumerate(examples) if i % folds == k]
        model = ReplyClassifier.from_examples(train)
        right += sum(model.classify(e.text).label == e.label for e in test)
    return right / len(examples)


def main() -> None:
    train = load_examples(DATA / "train.jsonl")
    heldout = load_examples(DATA / "heldout.jsonl")
    started = time.perf_counter()
    model = ReplyClassifier.from_examples(train)
    trained = time.perf_counter() - started
    baseline = train_baseline(train)

    measured = accuracy(lambda t: model.classify(t).label, heldout)
    model_only = accuracy(lambda t: model.classify(t, use_rules=False).label, heldout)
    base = accuracy(baseline, heldout)
    sources = Counter(model.classify(e.text).source for e in heldout)

    texts = [e.text for e in train + heldout] * 3
    started = time.perf_counter()
    for text in texts:
        model.classify(text)
    per_second = len(texts) / (time.perf_counter() - started)

    print(f"labelled replies: {len(train)} training, {len(heldout)} held out (en, de, fr, es)")
    print(f"baseline (words-only naive Bayes, no rules)  held-out accuracy {base:.3f}")
    print(f"shipped model without rules                  held-out accuracy {model_only:.3f}")
    print(f"shipped classifier (rules + model)           held-out accuracy {measured:.3f}  {dict(sources)}")
    print(f"ratio shipped / baseline: {measured / base:.2f}")
    print(f"5-fold cross-validated accuracy on the training split: {cross_validated(train):.3f}")
    print(f"training: {trained * 1000:.0f} ms; classification: {per_second:.0f} replies/s (one core)")


if __name__ == "__main__":
    main()
