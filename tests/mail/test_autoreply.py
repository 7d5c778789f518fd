"""Auto-replies: RFC 3834 and vendor headers, out-of-office wording, and the return date they state."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from imail.mail.autoreply import AutoReply, detect_auto_reply, find_return_date
from imail.mail.parsing import parse_message

MESSAGES = Path(__file__).resolve().parents[1] / "data" / "messages"


def load(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "back", "signal"),
    [
        ("ooo_en_exchange.eml", date(2026, 12, 12), "subject: automatic reply"),
        ("ooo_de_abwesenheit.eml", date(2026, 12, 15), "header precedence: auto_reply"),
        ("ooo_fr_absence.eml", date(2027, 1, 6), "header x-autoreply"),  # "jusqu'au 5 janvier inclus"
        ("ooo_es_respuesta.eml", date(2027, 1, 7), "header x-autorespond"),
        ("ooo_it_fuori_sede.eml", date(2026, 8, 24), "subject: out of office"),
    ],
)
def test_out_of_office_in_each_language(name, back, signal):
    auto = detect_auto_reply(load(name))
    assert auto.is_auto_reply and auto.out_of_office
    assert auto.return_date == back
    assert signal in auto.signals


def test_a_ticket_acknowledgement_is_an_auto_reply_but_not_out_of_office():
    auto = detect_auto_reply(load("autoreply_ticket_ack.eml"))
    assert auto.is_auto_reply and not auto.out_of_office and auto.return_date is None
    assert auto.signals == ["header x-autoreply", "header precedence: bulk"]


def test_exchange_rules_loop_header_alone_is_not_an_auto_reply():
    # Exchange stamps it on mail any inbox rule touched, ours included: a person's reply can carry it
    auto = detect_auto_reply(load("reply_rules_loop_human.eml"))
    assert auto == AutoReply()


@pytest.mark.parametrize("name", ["reply_gmail_en.eml", "reply_outlook_de.eml", "reply_apple_fr.eml"])
def test_replies_are_not_auto_replies(name):
    assert not detect_auto_reply(load(name)).is_auto_reply


def message(headers: str, body: str = "Thanks, let's talk on Tuesday.") -> bytes:
    head = "From: x@example.com\nTo: ana@acme.io\nDate: Mon, 09 Mar 2026 10:00:00 +0000\n"
    return f"{head}{headers}\n\n{body}".encode()


@pytest.mark.parametrize(
    ("headers", "auto"),
    [
        ("Auto-Submitted: no\nSubject: Re: hi", False),
        ("Auto-Submitted: auto-replied\nSubject: Re: hi", True),
        ('Auto-Submitted: auto-generated; owner-email="x@example.com"\nSubject: hi', True),
        ("Auto-Submitted: auto-notified\nSubject: hi", True),
        ("X-Autoreply: yes\nSubject: hi", True),
        ("X-Autoreply: no\nSubject: hi", False),
        ("X-Autorespond: anything\nSubject: hi", True),
        ("X-Mail-Autoreply: yes\nSubject: hi", True),
        ("Precedence: auto_reply\nSubject: hi", True),
        ("Precedence: junk\nSubject: hi", True),
        ("Precedence: list\nSubject: hi", False),
        ("X-Auto-Response-Suppress: All\nSubject: Re: hi", False),
        ("X-MS-Exchange-Inbox-Rules-Loop: x@example.com\nSubject: Re: hi", False),
        ("Subject: Out of Office: hi", True),
        ("Subject: Automatische Antwort: hi", True),
        ("Subject: Re: out of scope question", False),
    ],
)
def test_header_and_subject_signals(headers, auto):
    assert detect_auto_reply(message(headers)).is_auto_reply is auto


def test_body_wording_alone_counts_and_states_a_return_date():
    auto = detect_auto_reply(
        message("Subject: Re: hi", "I'm currently on vacation and will be back on March 16.")
    )
    assert auto.is_auto_reply and auto.out_of_office and auto.return_date == date(2026, 3, 16)
    assert auto.signals == ["body: out-of-office wording"]


def test_the_date_header_anchors_relative_dates():
    auto = detect_auto_reply(
        message("Auto-Submitted: auto-replied\nSubject: Out of office", "Back tomorrow.")
    )
    assert auto.return_date == date(2026, 3, 10)
    explicit = detect_auto_reply(message("Subject: Out of office", "Back tomorrow."), today=date(2026, 5, 1))
    assert explicit.return_date == date(2026, 5, 2)


MON_9_MARCH = date(2026, 3, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I will be back on 12 December", date(2026, 12, 12)),
        ("I will be back on December 12th, 2026.", date(2026, 12, 12)),
        ("back on Monday 3/16", date(2026, 3, 16)),
        ("Back Friday 4/3.", date(2026, 4, 3)),  # English: month first, and 3 April 2026 is a Friday
        ("zurück am 15.12.2026", date(2026, 12, 15)),
        ("Ab dem 3. April bin ich wieder im Büro.", date(2026, 4, 3)),
        ("Ich bin bis einschließlich 20.3. im Urlaub, ab 23.3. wieder erreichbar.", date(2026, 3, 23)),
        ("Ich bin am Freitag, 3.4. wieder da.", date(2026, 4, 3)),  # German: day first
        ("Out of office until 2026-03-20.", date(2026, 3, 20)),
        ("Je serai de retour le 16 mars.", date(2026, 3, 16)),
        ("De retour le 1er avril.", date(2026, 4, 1)),
        ("Estaré fuera hasta el 18 de marzo de 2026", date(2026, 3, 18)),
        ("Volveré el lunes.", date(2026, 3, 16)),
        ("Sono in ferie fino al 25 marzo.", date(2026, 3, 25)),
        ("Away from March 12 through March 16.", date(2026, 3, 17)),  # through: back the day after
        ("Out of office, back tomorrow.", date(2026, 3, 10)),
        ("Out this week, returning next week.", date(2026, 3, 16)),
        ("Back Thursday.", date(2026, 3, 12)),
        ("Back on Monday.", date(2026, 3, 16)),  # on a Monday, "Monday" is the next one
        ("I'm out from 1 to 10 April.", date(2026, 4, 10)),
        ("Back on 5 January.", date(2027, 1, 5)),  # the next 5 January after the message
        ("Call me at 10.30 tomorrow or um 10.30 Uhr.", date(2026, 3, 10)),  # times are not dates
        ("I have limited access to email.", None),
        ("Back on 1 January 2020.", None),  # in the past: ignored
        ("Back on 31 February.", None),
        ("", None),
    ],
)
def test_find_return_date(text, expected):
    assert find_return_date(text, MON_9_MARCH) == expected


def test_year_rolls_over_at_year_end():
    assert find_return_date("zurück am 7.1.", date(2026, 12, 22)) == date(2027, 1, 7)


@pytest.mark.parametrize("data", [b"", b"\xff\xfe\x00garbage", "plain words"])
def test_bad_input_is_no_auto_reply(data):
    assert detect_auto_reply(data) == AutoReply()


def test_parsed_message_input():
    assert detect_auto_reply(parse_message(load("ooo_en_exchange.eml"))).out_of_office
