"""Bounces: RFC 3464 reports and the common non-standard formats; kinds and soft categories."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from imail.events.types import EmailBouncedSoft
from imail.mail.bounces import Bounce, classify, parse_bounce
from imail.mail.parsing import parse_message

MESSAGES = Path(__file__).resolve().parents[1] / "data" / "messages"


def load(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "kind", "category", "status", "recipient", "original", "fmt"),
    [
        (
            "dsn_postfix_511.eml",
            "hard",
            None,
            "5.1.1",
            "nobody@example.com",
            "<01jgzq6m2w4h8e7k9r3t5v1b2n@acme.io>",
            "rfc3464",
        ),
        (
            "dsn_postfix_422_failed.eml",
            "soft",
            "mailbox_full",
            "4.2.2",
            "full.box@example.org",
            "<01jgzqj7c1y0d3f5g7h9k2m4p6@acme.io>",
            "rfc3464",
        ),
        (
            "dsn_postfix_delayed_greylist.eml",
            "delayed",
            "greylisted",
            "4.2.0",
            "lena@example.net",
            "<01jgzr3a9b8c7d6e5f4g3h2j1k@acme.io>",
            "rfc3464",
        ),
        (
            "dsn_positive_delivered.eml",
            "delivered",
            None,
            "2.0.0",
            "bob@example.com",
            "<01jgzt0s4e6r8t0y2u4i6o8p0a@acme.io>",
            "rfc3464",
        ),
        # Exim's report says Status 5.0.0; the diagnostic's 5.1.1 is the specific code
        (
            "bounce_exim_failed.eml",
            "hard",
            None,
            "5.1.1",
            "jens.o@example.dk",
            "<01jh3k7n5m4b3v2c1x0z9a8s7d@acme.io>",
            "rfc3464",
        ),
        (
            "bounce_o365_report_blocked.eml",
            "soft",
            "policy",
            "5.7.708",
            "raj@fabrikam.com",
            "<01jh1f0q2w3e4r5t6y7u8i9o0p@acme.io>",
            "rfc3464",
        ),
        # non-standard: no delivery-status part, everything from the human-readable text
        (
            "bounce_gmail_address_not_found.eml",
            "hard",
            None,
            "5.1.1",
            "carla.m@example.co.uk",
            "<CAK7xY2nq0+M4pvw7_ZbGQ3sZ0k=Tq@mail.gmail.com>",
            "gmail",
        ),
        (
            "bounce_gmail_delay.eml",
            "delayed",
            "mailbox_full",
            "4.2.2",
            "tom@example.de",
            "<CAK7xY2o1dQ@mail.gmail.com>",
            "gmail",
        ),
        (
            "bounce_exchange_ndr.eml",
            "hard",
            None,
            "5.1.10",
            "dana.k@contoso.com",
            "<01jh1a2b3c4d5e6f7g8h9j0k1m@acme.io>",
            "exchange",
        ),
        (
            "bounce_exim_text_only.eml",
            "soft",
            "policy",
            "5.7.1",
            "pia@example.se",
            "<01jh3q0w9e8r7t6y5u4i3o2p1a@acme.io>",
            "exim",
        ),
        # 5.2.2 mailbox full is a soft bounce, whatever its class
        (
            "bounce_qmail.eml",
            "soft",
            "mailbox_full",
            "5.2.2",
            "mario.rossi@example.it",
            "<01jh5a1s2d3f4g5h6j7k8l9z0x@acme.io>",
            "qmail",
        ),
    ],
)
def test_sample_bounces(name, kind, category, status, recipient, original, fmt):
    bounce = parse_bounce(load(name))
    assert bounce.is_bounce and bounce.error is None
    assert (bounce.kind, bounce.category, bounce.status_code) == (kind, category, status)
    assert bounce.recipient == recipient
    assert bounce.original_message_id == original
    assert bounce.format == fmt
    assert bounce.diagnostic and (status in bounce.diagnostic or kind == "delivered")
    if category:  # the event payload accepts every category this module produces
        EmailBouncedSoft(message_id="msg_1", category=category, status_code=status)


def test_diagnostics_are_one_clean_line():
    assert parse_bounce(load("dsn_postfix_511.eml")).diagnostic == (
        "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert parse_bounce(load("bounce_qmail.eml")).diagnostic == (
        "Remote host said: 552 5.2.2 <mario.rossi@example.it>... Mailbox over quota"
    )


def test_parses_an_already_parsed_message_too():
    assert parse_bounce(parse_message(load("dsn_postfix_511.eml"))).kind == "hard"


def test_report_with_several_recipients_reports_each_and_the_worst_first():
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\nTo: ana@acme.io\nSubject: Undelivered Mail Returned to Sender\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
        b"--B\nContent-Type: text/plain\n\nReport.\n"
        b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
        b"Final-Recipient: rfc822; ok@example.com\nAction: delivered\nStatus: 2.0.0\n\n"
        b"Final-Recipient: rfc822; later@example.com\nAction: delayed\nStatus: 4.4.1\n"
        b"Diagnostic-Code: smtp; 421 4.4.1 connection timed out\n\n"
        b"Final-Recipient: rfc822; gone@example.com\nAction: failed\nStatus: 5.1.1\n\n"
        b"--B--\n"
    )
    bounce = parse_bounce(raw)
    assert [(r.recipient, r.kind, r.category) for r in bounce.recipients] == [
        ("ok@example.com", "delivered", None),
        ("later@example.com", "delayed", "temporary"),
        ("gone@example.com", "hard", None),
    ]
    assert (bounce.kind, bounce.recipient, bounce.status_code) == ("hard", "gone@example.com", "5.1.1")


def test_global_delivery_status_in_base64():
    import base64

    fields = base64.b64encode(
        "Reporting-MTA: dns; mx.example.jp\n\nFinal-Recipient: rfc822; 山田@example.jp\nAction: failed\n"
        "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n".encode()
    )
    raw = (
        b"From: MAILER-DAEMON@mx.example.jp\nTo: ana@acme.io\nSubject: Undelivered Mail\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=global-delivery-status; boundary=G\n\n"
        b"--G\nContent-Type: text/plain\n\nfailed\n"
        b"--G\nContent-Type: message/global-delivery-status\nContent-Transfer-Encoding: base64\n\n"
        + fields
        + b"\n--G--\n"
    )
    bounce = parse_bounce(raw)
    assert (bounce.kind, bounce.status_code, bounce.recipient) == ("hard", "5.1.1", "山田@example.jp")


@pytest.mark.parametrize(
    ("status", "smtp", "diagnostic", "action", "expected"),
    [
        ("5.1.1", 550, "User unknown", "failed", ("hard", None)),
        ("5.1.2", 550, "Host unknown", "failed", ("hard", None)),
        ("5.2.1", 550, "Mailbox disabled", "failed", ("hard", None)),
        ("5.4.4", None, "Unable to route", "failed", ("hard", None)),
        ("5.2.2", 552, "Mailbox full", "failed", ("soft", "mailbox_full")),
        ("5.0.0", 550, "Requested action not taken: mailbox full", "failed", ("soft", "mailbox_full")),
        ("5.7.1", 554, "Message rejected as spam", "failed", ("soft", "policy")),
        ("5.7.1", 550, "Recipient address rejected: User unknown", "failed", ("hard", None)),
        ("5.0.0", 554, "Your IP is listed at zen.spamhaus.org", "failed", ("soft", "policy")),
        ("5.3.4", 552, "Message size exceeds fixed limit", "failed", ("soft", "policy")),
        ("5.4.7", None, "Delivery time expired", "failed", ("soft", "temporary")),
        ("4.2.2", 452, "Mailbox full", "failed", ("soft", "mailbox_full")),
        ("4.2.0", 450, "Recipient address rejected: Greylisted", "failed", ("soft", "greylisted")),
        ("4.7.1", 451, "Please try again later", "failed", ("soft", "greylisted")),
        (
            "4.7.1",
            451,
            "Service unavailable, client host blocked using bl.spamcop.net",
            "failed",
            ("soft", "policy"),
        ),
        (
            "4.7.0",
            421,
            "Our system has detected an unusual rate of unsolicited mail",
            "failed",
            ("soft", "policy"),
        ),
        ("4.4.1", 421, "Connection timed out", "failed", ("soft", "temporary")),
        ("4.4.1", 421, "Connection timed out", "delayed", ("delayed", "temporary")),
        ("4.2.2", 452, "Mailbox full", "delayed", ("delayed", "mailbox_full")),
        ("2.0.0", 250, "OK", "delivered", ("delivered", None)),
        (None, None, None, "relayed", ("delivered", None)),
        (None, 550, "550 No such user here", "failed", ("hard", None)),
        (None, 450, "450 try later", "failed", ("soft", "temporary")),
        (None, None, "The recipient's mailbox is full", None, ("soft", "mailbox_full")),
        (None, None, "no such user", None, ("hard", None)),
        (None, None, "greylisted, come back later", None, ("soft", "greylisted")),
        (None, None, "blocked by policy", None, ("soft", "policy")),
        (None, None, "temporary failure", None, ("soft", "temporary")),
        (None, None, "something happened", None, ("unknown", None)),
        (None, None, None, None, ("unknown", None)),
    ],
)
def test_classify(status, smtp, diagnostic, action, expected):
    assert classify(status, smtp, diagnostic, action) == expected


# --- not bounces, and unhappy paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["reply_gmail_en.eml", "reply_outlook_de.eml", "ooo_en_exchange.eml", "autoreply_ticket_ack.eml"]
)
def test_replies_and_auto_replies_are_not_bounces(name):
    bounce = parse_bounce(load(name))
    assert bounce == Bounce() and not bounce.is_bounce and bounce.kind == "unknown"


def test_a_human_writing_about_delivery_is_not_a_bounce():
    raw = (
        b"From: Bob <bob@example.com>\nTo: ana@acme.io\nSubject: Re: Undeliverable invoice\n\n"
        b"Hi, your invoice could not be delivered by post, can you email it?"
    )
    assert not parse_bounce(raw).is_bounce


def test_report_without_per_recipient_part_is_unknown():
    bounce = parse_bounce(load("dsn_report_without_recipient.eml"))
    assert bounce.is_bounce and bounce.kind == "unknown" and bounce.recipient is None
    assert bounce.error == "delivery report without per-recipient fields"


def test_report_without_per_recipient_part_falls_back_on_its_text():
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\nTo: ana@acme.io\nSubject: Undelivered Mail Returned to Sender\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
        b"--B\nContent-Type: text/plain\n\n<x@example.com>: host mx said: 550 5.1.1 User unknown\n"
        b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n--B--\n"
    )
    bounce = parse_bounce(raw)
    assert (bounce.kind, bounce.status_code, bounce.recipient) == ("hard", "5.1.1", "x@example.com")


def test_delivery_status_part_full_of_garbage():
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\nTo: ana@acme.io\nSubject: Undelivered Mail\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
        b"--B\nContent-Type: message/delivery-status\n\n\x00\xff\xfe garbage: \x01\n\n: :\n--B--\n"
    )
    bounce = parse_bounce(raw)
    assert bounce.is_bounce and bounce.kind == "unknown"


@pytest.mark.parametrize("data", [b"", b"\x00" * 50, "not a message", b"Subject: x\n\n"])
def test_empty_and_garbage_input(data):
    bounce = parse_bounce(data)
    assert isinstance(bounce, Bounce) and not bounce.is_bounce and bounce.kind == "unknown"


def test_mutated_samples_never_raise():
    rng = random.Random(3)
    samples = [
        p.read_bytes() for p in sorted(MESSAGES.glob("*.eml")) if p.name.startswith(("dsn_", "bounce_"))
    ]
    for raw in samples:
        for _ in range(15):
            data = bytearray(raw)
            for _ in range(rng.randrange(1, 40)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = rng.randrange(len(data) // 2, len(data) + 1)
            assert isinstance(parse_bounce(bytes(data[:cut])), Bounce)
