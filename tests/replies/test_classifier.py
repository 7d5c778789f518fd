"""The local reply classifier: its labelled data, its held-out accuracy, its rules, determinism and limits."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from imail.mail.inbound import fold
from imail.replies.classifier import (
    LABELS,
    MAX_TEXT_CHARS,
    RULE_CONFIDENCE,
    ReplyClassifier,
    default_classifier,
    load_examples,
    training_file,
)
from imail.replies.rules import rule_label

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "replies"
TRAIN = DATA / "train.jsonl"
HELDOUT = DATA / "heldout.jsonl"
LANGUAGES = {"en", "de", "fr", "es"}
REQUIRED_ACCURACY = 0.90


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", fold(text)))


# --- the labelled data ------------------------------------------------------------------------------------


def test_labelled_set_size_languages_and_labels():
    train, heldout = load_examples(TRAIN), load_examples(HELDOUT)
    assert len(train) + len(heldout) >= 240
    for split in (train, heldout):
        cells = Counter((e.language, e.label) for e in split)
        missing = [(lang, label) for lang in LANGUAGES for label in LABELS if not cells[(lang, label)]]
        assert not missing, f"every label in every language, in both splits; missing {missing}"


def test_package_ships_exactly_the_training_split():
    assert training_file().read_bytes() == TRAIN.read_bytes(), (
        "src/imail/replies/data/train.jsonl must be a copy of tests/data/replies/train.jsonl"
    )


def test_held_out_rows_are_not_in_training_nor_near_copies_of_it():
    train, heldout = load_examples(TRAIN), load_examples(HELDOUT)
    train_texts = {fold(e.text).strip() for e in train}
    assert not [e.text for e in heldout if fold(e.text).strip() in train_texts]
    train_words = [words(e.text) for e in train]
    worst = 0.0
    for example in heldout:
        mine = words(example.text)
        for theirs in train_words:
            similarity = len(mine & theirs) / len(mine | theirs)
            worst = max(worst, similarity)
            assert similarity < 0.7, f"held-out {example.text!r} is a near copy of a training row"
    assert worst < 0.7


# --- accuracy on the held-out split --------------------------------------------------------------------


def test_held_out_accuracy():
    classifier = ReplyClassifier.from_file(TRAIN)  # trained on the training split only
    heldout = load_examples(HELDOUT)
    right = Counter()
    total = Counter()
    misses = []
    for example in heldout:
        got = classifier.classify(example.text)
        for key in ("all", example.language, example.label):
            total[key] += 1
            right[key] += got.label == example.label
        if got.label != example.label:
            misses.append(
                f"  {example.label} → {got.label} ({got.source} {got.confidence:.2f}): {example.text}"
            )
    accuracy = right["all"] / total["all"]
    lines = [
        (
            f"reply classifier held-out accuracy: {accuracy:.4f} ({right['all']}/{total['all']}), "
            f"trained on {len(load_examples(TRAIN))} rows"
        ),
        "by language: " + ", ".join(f"{k} {right[k]}/{total[k]}" for k in sorted(LANGUAGES)),
        "by label: " + ", ".join(f"{k} {right[k]}/{total[k]}" for k in LABELS),
        "misclassified:",
        *misses,
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "classifier-accuracy.txt").write_text(report, encoding="utf-8")
    assert accuracy >= REQUIRED_ACCURACY, report


# --- behaviour -----------------------------------------------------------------------------------------


def test_training_is_deterministic():
    texts = [e.text for e in load_examples(HELDOUT)]
    first = ReplyClassifier.from_file(TRAIN)
    second = ReplyClassifier.from_file(TRAIN)
    assert [first.classify(t) for t in texts] == [second.classify(t) for t in texts]


def test_default_classifier_is_trained_once():
    default_classifier.cache_clear()
    classifier = default_classifier()
    assert default_classifier() is classifier


def test_model_answers_carry_a_probability_and_evidence():
    result = default_classifier().classify("Sounds great, could you send me your pricing for ten people?")
    assert result.label == "interested" and result.source == "model"
    assert 0.0 < result.confidence <= 1.0 and result.evidence


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Please unsubscribe me.", "unsubscribe_request"),
        ("Not interested. Remove me from your list.", "unsubscribe_request"),  # suppression wins
        ("STOP", "unsubscribe_request"),
        ("Bitte tragen Sie mich aus Ihrem Verteiler aus.", "unsubscribe_request"),
        ("Merci de me désinscrire.", "unsubscribe_request"),
        ("Por favor, denme de baja.", "unsubscribe_request"),
        (
            "Ich bin im Urlaub und lese keine E-Mails.",
            "out_of_office",
        ),  # "keine E-Mails" alone is not a request
        (
            "Estoy de baja por maternidad hasta junio.",
            "out_of_office",
        ),  # "de baja" alone is leave, not opt-out
        ("I'm out of the office until Monday.", "out_of_office"),
        ("I just booked a slot for Tuesday.", "meeting_booked"),
        ("Invite accepted, see you Thursday.", "meeting_booked"),
        ("Einladung angenommen.", "meeting_booked"),
        ("I no longer work at Acme.", "wrong_person"),
    ],
)
def test_rules(text, label):
    decided = rule_label(fold(text))
    assert decided is not None and decided[0] == label
    result = default_classifier().classify(text)
    assert (result.label, result.source, result.confidence) == (label, "rules", RULE_CONFIDENCE)


@pytest.mark.parametrize(
    "text",
    [
        "Can we book a meeting next week?",  # a wish, not a booking
        "Please send me a calendar invite for Friday.",
        "Who gave you my email address?",
        "I'll stop by your booth at the fair.",
    ],
)
def test_rules_stay_out_of_ambiguous_wording(text):
    decided = rule_label(fold(text))
    assert decided is None or decided[0] not in ("meeting_booked", "unsubscribe_request")


@pytest.mark.parametrize("text", ["", "   \n\t", "\u200b"])
def test_empty_text_is_neutral(text):
    result = default_classifier().classify(text)
    assert result.label == "neutral" and result.source in ("empty", "model")


def test_text_without_known_features_is_neutral():
    result = default_classifier().classify("qqqq zzzz xxxx")
    assert result.label == "neutral" and result.confidence == pytest.approx(1 / len(LABELS), abs=1e-3)


def test_huge_text_is_bounded():
    """Only the first MAX_TEXT_CHARS are read, so the work is bounded: a tail that would change the answer (an
    unsubscribe rule, words of another label) past them changes nothing."""
    head = "We are interested in a demo. " + "lorem ipsum dolor sit amet " * (MAX_TEXT_CHARS // 27 + 1)
    tail = " Please unsubscribe me, remove me from your list, not interested. " * 40000
    result = default_classifier().classify(head + tail)
    assert result == default_classifier().classify(head[:MAX_TEXT_CHARS])
    assert result.label in LABELS and result.label != "unsubscribe_request"
    assert default_classifier().classify(tail).label == "unsubscribe_request"  # the tail alone would decide it


def test_bad_training_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "neutral"}\n{"text": "x", "label": "maybe"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_examples(bad)
