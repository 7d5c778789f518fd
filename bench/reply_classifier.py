#!/usr/bin/env python3
"""Reply classifier benchmark: held-out accuracy per label and per language, calibration, and speed.

The held-out replies are written separately from the training corpus and never trained on:
tests/data/replies/heldout.jsonl (254) and heldout_fresh.jsonl (75, written later, after the first round of
changes, including mixed-language and forwarded replies). Each is sent the way `imail replies classify`
receives replies: as an RFC 822 message through `imail.replies.verdict.assess` (bounce and auto-reply
detection, quoted history and signature cut, rules, model). One in four is plain text as written, one in four
carries a signature and our quoted email under an attribution line in its language, one in four is HTML only
(the quote in a <blockquote>), one in four quotes us in an Outlook header block. Printed:

  baseline   a words-only naive Bayes trained on the same corpus, text only (the textbook model)
  shipped    the shipped model alone on the text (no rules), and the whole pipeline on the messages
  per label / per language accuracy of the whole pipeline, and its misses
  calibration: mean confidence against accuracy of the model's own answers
  speed: whole-pipeline messages per second and per-message latency (mean, p99), one core, no network

    PYTHONPATH=src .venv/bin/python bench/reply_classifier.py
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape
from pathlib import Path

from imail.mail.parsing import fold
from imail.replies.classifier import LABELS, Example, default_classifier, load_examples
from imail.replies.verdict import assess

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "replies"
LANGUAGES = ("en", "de", "fr", "es", "pt", "nl", "it")

OUR_EMAIL = "Hi, we help revenue teams book more meetings. Would a short call next week be useful?"
ATTRIBUTION = {
    "en": "On Wed, Jan 7, 2026 at 8:41 AM Sam Carter <sam@seller.example> wrote:",
    "de": "Am Mi., 7. Jan. 2026 um 08:41 Uhr schrieb Sam Carter <sam@seller.example>:",
    "fr": "Le mer. 7 janv. 2026 à 08:41, Sam Carter <sam@seller.example> a écrit :",
    "es": "El mié, 7 ene 2026 a las 8:41, Sam Carter (<sam@seller.example>) escribió:",
    "pt": "Em qua., 7 de jan. de 2026 às 08:41, Sam Carter <sam@seller.example> escreveu:",
    "nl": "Op wo 7 jan 2026 om 08:41 schreef Sam Carter <sam@seller.example>:",
    "it": "Il giorno mer 7 gen 2026 alle ore 08:41 Sam Carter <sam@seller.example> ha scritto:",
}
OUTLOOK = {
    "en": ("From", "Sent", "To", "Subject"),
    "de": ("Von", "Gesendet", "An", "Betreff"),
    "fr": ("De", "Envoyé", "À", "Objet"),
    "es": ("De", "Enviado el", "Para", "Asunto"),
    "pt": ("De", "Enviada em", "Para", "Assunto"),
    "nl": ("Van", "Verzonden", "Aan", "Onderwerp"),
    "it": ("Da", "Inviato", "A", "Oggetto"),
}
SIGNATURE = "Robin Meyer\nSenior Buyer | Contoso Group\n+44 20 7946 0018"


def message(example: Example, index: int) -> bytes:
    """The held-out reply as an email, dressed by `index` (plain, quoted, HTML only, Outlook block)."""
    msg = EmailMessage()
    msg["From"] = "Robin Meyer <robin@buyer.example>"
    msg["To"] = "sam@seller.example"
    msg["Subject"] = "Re: Quick question"
    msg["Date"] = format_datetime(datetime(2026, 1, 7, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="buyer.example")
    msg["In-Reply-To"] = "<first@seller.example>"
    text, lang = example.text, example.language or "en"
    style = index % 4
    if style == 0:
        msg.set_content(text)
    elif style == 1:
        msg.set_content(f"{text}\n\n{SIGNATURE}\n\n{ATTRIBUTION[lang]}\n> {OUR_EMAIL}\n>\n> Sam\n")
    elif style == 2:
        paragraphs = "".join(f"<p>{escape(line)}</p>" for line in text.split("\n") if line.strip())
        msg.set_content(
            f"<html><body><div>{paragraphs}</div><div class=gmail_quote>{escape(ATTRIBUTION[lang])}"
            f"<blockquote>{escape(OUR_EMAIL)}</blockquote></div></body></html>",
            subtype="html",
        )
    else:
        f, s, t, subject = OUTLOOK[lang]
        msg.set_content(
            f"{text}\n\n{SIGNATURE}\n\n________________________________\n"
            f"{f}: Sam Carter <sam@seller.example>\n{s}: 7 January 2026 08:41\n"
            f"{t}: Robin Meyer\n{subject}: Quick question\n\n{OUR_EMAIL}\n"
        )
    return bytes(msg)


class WordsNaiveBayes:
    """The baseline: multinomial naive Bayes over words, Laplace-smoothed."""

    def __init__(self, examples: list[Example]) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        for e in examples:
            self.counts[e.label].update(self.words(e.text))
        self.vocabulary = set().union(*self.counts.values())
        self.totals = {label: sum(c.values()) + len(self.vocabulary) for label, c in self.counts.items()}

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9']+", fold(text))

    def predict(self, text: str) -> str:
        words = [w for w in self.words(text) if w in self.vocabulary]
        return max(
            self.counts,
            key=lambda label: sum(math.log((self.counts[label][w] + 1) / self.totals[label]) for w in words),
        )


def share(right: int, total: int) -> str:
    return f"{right / total:6.1%} ({right}/{total})" if total else "     -"


async def main() -> None:
    train = load_examples(DATA / "train.jsonl")
    first = load_examples(DATA / "heldout.jsonl")
    fresh = load_examples(DATA / "heldout_fresh.jsonl")
    heldout = first + fresh
    started = time.perf_counter()
    classifier = default_classifier()
    loaded = time.perf_counter() - started
    baseline = WordsNaiveBayes(train)

    base = sum(baseline.predict(e.text) == e.label for e in heldout)
    model_answers = [(classifier.classify(e.text, use_rules=False), e) for e in heldout]
    model_only = sum(got.label == e.label for got, e in model_answers)

    messages = [message(e, i) for i, e in enumerate(heldout)]
    right: Counter[str] = Counter()
    fresh_right = 0
    total: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    net = Counter()  # the unsubscribe safety net: opt-outs it flags, and replies it would suppress wrongly
    misses = []
    for position, (data, example) in enumerate(zip(messages, heldout, strict=True)):
        verdict = await assess(data)
        sources[verdict.source] += 1
        opt_out = example.label == "unsubscribe_request"
        net["opt-outs"] += opt_out
        net["opt-outs flagged"] += opt_out and verdict.unsubscribe
        net["opt-outs flagged under another label"] += (
            opt_out and verdict.unsubscribe and verdict.label != example.label
        )
        net["others"] += not opt_out
        net["others flagged"] += not opt_out and verdict.unsubscribe
        for key in ("all", example.label, example.language):
            total[key] += 1
            right[key] += verdict.label == example.label
        fresh_right += position >= len(first) and verdict.label == example.label
        if verdict.label != example.label:
            misses.append(
                f"  {example.language} {example.label} → {verdict.label} ({verdict.source} "
                f"{verdict.confidence:.2f}): {example.text[:90]!r}"
            )

    latencies = []
    for _ in range(3):
        for data in messages:
            started = time.perf_counter()
            await assess(data)
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    texts = [e.text for e in heldout] * 5
    started = time.perf_counter()
    for text in texts:
        classifier.classify(text)
    text_rate = len(texts) / (time.perf_counter() - started)

    mean_confidence = sum(got.confidence for got, _ in model_answers) / len(model_answers)
    print(
        f"labelled replies: {len(train)} training rows, {len(heldout)} held out "
        f"({', '.join(f'{lang} {total[lang]}' for lang in LANGUAGES)})"
    )
    print(f"baseline words-only naive Bayes, text       held-out accuracy {share(base, len(heldout))}")
    print(f"shipped model alone (no rules), text         held-out accuracy {share(model_only, len(heldout))}")
    print(
        f"shipped pipeline on RFC 822 messages         held-out accuracy {share(right['all'], total['all'])}"
        f"  decided by {dict(sources)}"
    )
    print(
        f"  of which heldout.jsonl {share(right['all'] - fresh_right, len(first))}, "
        f"heldout_fresh.jsonl {share(fresh_right, len(fresh))}"
    )
    print("per label:    " + "  ".join(f"{label} {share(right[label], total[label])}" for label in LABELS))
    print("per language: " + "  ".join(f"{lang} {share(right[lang], total[lang])}" for lang in LANGUAGES))
    print(
        f"unsubscribe safety net: {net['opt-outs flagged']}/{net['opt-outs']} opt-outs suppressed "
        f"({net['opt-outs flagged under another label']} under another label); "
        f"{net['others flagged']}/{net['others']} "
        "other replies would be suppressed too"
    )
    print(
        f"calibration (model alone): mean confidence {mean_confidence:.3f}, accuracy "
        f"{model_only / len(heldout):.3f}"
    )
    print(
        f"speed: {len(latencies) / sum(latencies):.0f} messages/s through the whole pipeline, per message "
        "mean "
        f"{1000 * sum(latencies) / len(latencies):.2f} ms, p99 "
        f"{1000 * latencies[int(len(latencies) * 0.99)]:.2f} ms; "
        f"{text_rate:.0f} texts/s classified; model loaded in {loaded * 1000:.0f} ms"
    )
    print("misses:" if misses else "misses: none")
    print("\n".join(misses))
    await independent(classifier)


async def independent(classifier) -> None:
    """The independent set (tests/data/replies/independent, see its README): whole messages as written."""
    import json

    folder = DATA / "independent"
    rows = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    suppressed = wrongly_suppressed = 0
    misses = []
    for row in rows:
        verdict = await assess((folder / row["file"]).read_bytes())
        for key in ("all", row["label"], row["language"]):
            total[key] += 1
            right[key] += verdict.label == row["label"]
        opt_out = row["label"] == "unsubscribe_request"
        suppressed += opt_out and verdict.unsubscribe
        wrongly_suppressed += not opt_out and verdict.unsubscribe
        if verdict.label != row["label"]:
            misses.append(
                f"  {row['file']}: {row['label']} → {verdict.label} ({verdict.source} "
                f"{verdict.confidence:.2f})"
            )
    print(f"independent set (written blind; see its README): {share(right['all'], total['all'])}")
    print("  per label:    " + "  ".join(f"{label} {share(right[label], total[label])}" for label in LABELS))
    print("  per language: " + "  ".join(f"{lang} {share(right[lang], total[lang])}" for lang in LANGUAGES))
    opt_outs = total["unsubscribe_request"]
    print(
        f"  opt-outs suppressed {suppressed}/{opt_outs}; other replies suppressed {wrongly_suppressed}/"
        f"{total['all'] - opt_outs}"
    )
    print("\n".join(misses) if misses else "  misses: none")


if __name__ == "__main__":
    asyncio.run(main())
