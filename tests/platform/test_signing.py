"""Signed tokens: round trip, and refusal of forgeries, tampering and reuse for another purpose."""

from __future__ import annotations

import pytest

from imail.kit.signing import BadSignature, Signer


def test_round_trip():
    signer = Signer("s" * 40)
    token = signer.sign("open", "msg_01HZ8K7XQ9VFRSGT3W2YBNMPDL")
    assert signer.unsign("open", token) == "msg_01HZ8K7XQ9VFRSGT3W2YBNMPDL"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t,
        lambda t: t.split(".")[0],
        lambda t: "",
    ],
)
def test_tampered_tokens_are_refused(mutate):
    signer = Signer("s" * 40)
    with pytest.raises(BadSignature):
        signer.unsign("open", mutate(signer.sign("open", "msg_1")))


def test_another_purpose_or_secret_is_refused():
    token = Signer("s" * 40).sign("open", "msg_1")
    with pytest.raises(BadSignature):
        Signer("s" * 40).unsign("unsubscribe", token)
    with pytest.raises(BadSignature):
        Signer("t" * 40).unsign("open", token)


def test_a_payload_cannot_be_swapped_under_a_signature():
    signer = Signer("s" * 40)
    a, b = signer.sign("click", "msg_a:0"), signer.sign("click", "msg_b:0")
    forged = b.split(".")[0] + "." + a.split(".")[1]
    with pytest.raises(BadSignature):
        signer.unsign("click", forged)
