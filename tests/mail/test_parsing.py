"""Parsing inbound messages in any charset, and cutting replies down to their new text."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imail.mail.parsing import (
    InboundMessage,
    decode_bytes,
    decode_header_value,
    extract_reply_text,
    looks_like_message,
    message_ids,
    parse_input,
    parse_message,
)

MESSAGES = Path(__file__).resolve().parents[1] / "data" / "messages"


def load(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


# --- whole messages -------------------------------------------------------------------------------------


def test_latin1_message_headers_body_and_new_text():
    msg = parse_message(load("reply_latin1_de.eml"))
    assert msg.error is None and msg.is_rfc822
    assert msg.from_email == "r.krause@beispiel.example" and msg.from_name == "Renate Krause"
    assert msg.to == ["ana@acme.io"]
    assert msg.subject == "Re: Kurze Frage"
    assert msg.message_id == "<latin1-1400@beispiel.example>"
    assert msg.in_reply_to == "<01jhp9o8i7u6y5t4r3e2w1q0a9@acme.io>"
    assert msg.date == datetime(2026, 1, 20, 13, 0, tzinfo=UTC)
    assert "bestätigt" in msg.text and "Grüße" in msg.text
    assert msg.reply_text == (
        "Hallo Frau Diaz,\n\nich habe Ihre Einladung angenommen, der Termin am Donnerstag um 10 Uhr ist\n"
        "bestätigt. Ich freue mich auf das Gespräch."
    )


def test_gmail_reply_prefers_plain_part_and_cuts_signature_and_quote():
    msg = parse_message(load("reply_gmail_en.eml"))
    assert msg.content_type == "multipart/alternative"
    assert msg.html is not None and "gmail_quote" in msg.html
    assert msg.references == ["<01jh9z0a1s2d3f4g5h6j7k8l9m@acme.io>", "<01jhb2n3m4q5w6e7r8t9y0u1i2@acme.io>"]
    assert msg.thread_ids == ["<01jhb2n3m4q5w6e7r8t9y0u1i2@acme.io>", "<01jh9z0a1s2d3f4g5h6j7k8l9m@acme.io>"]
    assert msg.reply_text == (
        "Hi Ana,\n\nGood timing, we're reviewing our outbound tooling this quarter. Could you\n"
        "send a short overview and pricing for a team of 15? Happy to set up a call\nafterwards."
    )


def test_outlook_header_block_windows1252_quoted_printable_crlf():
    raw = load("reply_outlook_de.eml")
    assert b"\r\n" in raw
    msg = parse_message(raw)
    assert msg.reply_text == (
        "Hallo Frau Diaz,\n\ndafür bin ich nicht zuständig. Bitte wenden Sie sich an unseren Einkaufsleiter, "
        "Herrn Schmidt."
    )
    assert "Gesendet:" in msg.text and "Gesendet:" not in msg.reply_text


def test_apple_mail_format_flowed_french_attribution_and_mobile_signature():
    msg = parse_message(load("reply_apple_fr.eml"))
    assert msg.reply_text == (
        "Bonjour Ana,\n\nMerci, mais nous avons déjà un prestataire et nous en sommes très satisfaits. "
        "Ce n'est pas le moment pour nous."
    )


def test_html_only_reply_is_derived_from_html_without_the_blockquote():
    msg = parse_message(load("reply_html_only_es.eml"))
    assert msg.html is not None
    assert "dadme de baja" in msg.text and "No me escribáis más." in msg.text
    assert "escribió" not in msg.reply_text and "pregunta rápida" not in msg.reply_text
    assert msg.reply_text.startswith("Hola Ana,") and "dadme de baja" in msg.reply_text


def test_unknown_charset_falls_back_to_utf8():
    msg = parse_message(load("reply_unknown_charset.eml"))
    assert msg.error is None
    assert msg.text.strip() == "Not interested, thanks. We already use another tool — café team."


@pytest.mark.parametrize("name", sorted(p.name for p in MESSAGES.glob("*.eml")))
def test_every_sample_parses_with_headers(name):
    msg = parse_message(load(name))
    assert msg.error is None, msg.error
    assert msg.from_email and "@" in msg.from_email
    assert msg.subject
    assert msg.date is not None and msg.date.tzinfo is not None


def test_encoded_words_with_unknown_charset_and_raw_8bit_headers():
    raw = (
        b"From: =?x-nope?Q?Jos=E9?= <jose@example.com>\n"
        b"Subject: Caf\xc3\xa9 =?utf-8?B?w6lsw6k=?= \xe9t\xe9\n"
        b"Date: not a date\n"
        b"\n"
        b"body\n"
    )
    msg = parse_message(raw)
    assert msg.from_email == "jose@example.com"
    assert msg.from_name == "José"  # unknown charset: UTF-8, then Windows-1252
    assert msg.subject == "Café élé été"  # raw UTF-8, an encoded word, raw Windows-1252
    assert msg.date is None


def test_message_ids_tolerate_comments_and_bare_ids():
    assert message_ids("<a@x> (Ana's message of Monday)") == ["<a@x>"]
    assert message_ids("a@x") == ["<a@x>"]
    assert message_ids("<a@x> <b@y>\n <a@x>") == ["<a@x>", "<b@y>"]
    assert message_ids("garbage") == [] and message_ids(None) == []


# --- plain text and input detection --------------------------------------------------------------------


def test_plain_text_input_is_not_a_message():
    msg = parse_input(
        "Sounds good, let's talk.\n\nOn Mon, Jan 5, 2026 at 9:00 AM Ana <ana@acme.io> wrote:\n> Hi"
    )
    assert not msg.is_rfc822 and msg.error is None
    assert msg.reply_text == "Sounds good, let's talk."


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"From: a@b.c\nSubject: x\n\nbody", True),
        (b"From sender@example.com Mon Jan  5 10:00:00 2026\nFrom: a@b.c\nTo: d@e.f\n\nbody", True),
        (b"Received: from x\n\tby y\nSubject: s\n\nbody", True),
        (b"Hi Ana,\nthanks for reaching out.", False),
        (b"Thanks: will do\n\nsure", False),  # a header-shaped line, but no known header
        (b"", False),
    ],
)
def test_looks_like_message(data, expected):
    assert looks_like_message(data) is expected


# --- the new text of a reply --------------------------------------------------------------------------

QUOTED = "\n> Hallo,\n> kurze Frage\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes please.\n\nOn Tue, 6 Jan 2026 at 10:00, Ana Diaz <ana@acme.io> wrote:\n> Hi", "Yes please."),
        ("Yes.\n\nOn Tue, Jan 6, 2026 at 10:00 AM Ana Diaz <\nana@acme.io> wrote:\n> Hi", "Yes."),
        ("Gern.\n\nAm 05.01.2026 um 10:00 schrieb Ana Díaz <ana@acme.io>:" + QUOTED, "Gern."),
        ("Gern.\n\nAm Mo., 5. Jan. 2026 um 10:00 Uhr schrieb Ana Díaz <ana@acme.io>:" + QUOTED, "Gern."),
        ("Oui.\n\nLe lun. 5 janv. 2026 à 10:00, Ana Díaz <ana@acme.io> a écrit :" + QUOTED, "Oui."),
        ("Sí.\n\nEl lun, 5 ene 2026 a las 10:00, Ana Díaz (<ana@acme.io>) escribió:" + QUOTED, "Sí."),
        ("Sì.\n\nIl giorno lun 5 gen 2026 alle ore 10:00 Ana <ana@acme.io> ha scritto:" + QUOTED, "Sì."),
        (
            "No thanks.\n\n-----Original Message-----\nFrom: Ana\nSent: Monday\nSubject: Hi\n\nHi",
            "No thanks.",
        ),
        ("Nein.\n\n-----Ursprüngliche Nachricht-----\nVon: Ana\nGesendet: Montag\n\nHallo", "Nein."),
        ("Non.\n\n-------- Message d'origine --------\nDe : Ana\n\nBonjour", "Non."),
        ("No.\n\n-----Mensaje original-----\nDe: Ana\n\nHola", "No."),
        (
            (
                "Call me.\n\n*From:* Ana Diaz <ana@acme.io>\n*Sent:* Monday, January 5, 2026 10:00 AM\n"
                "*To:* Bob\n"
                "*Subject:* Hi\n\nHi Bob"
            ),
            "Call me.",
        ),
        (
            (
                "Call me.\n________________________________\nFrom: Ana Diaz\nSent: Monday\nTo: Bob\n"
                "Subject: Hi\n\nHi"
            ),
            "Call me.",
        ),
        (
            (
                "Interested.\n\nDe: Ana Diaz <ana@acme.io>\nEnviado: lunes, 5 de enero de 2026 10:00\n"
                "Para: Bob\n"
                "Asunto: Hola\n\nHola"
            ),
            "Interested.",
        ),
        ("Sure.\n\nSent from my iPhone\n\n> On 5 Jan 2026, at 10:00, Ana wrote:", "Sure."),
        ("Gern.\n\nVon meinem iPhone gesendet", "Gern."),
        ("Avec plaisir.\n\nEnvoyé de mon iPad", "Avec plaisir."),
        ("Claro.\n\nEnviado desde mi iPhone", "Claro."),
        ("Sounds good.\n\n-- \nTom Becker\nHead of Sales", "Sounds good."),
        ("Yes, let's talk.\n\nBest regards,\nTom Becker\nHead of Sales, Example Inc.", "Yes, let's talk."),
        ("Ja, gern.\n\nMit freundlichen Grüßen\nJörg Müller", "Ja, gern."),
        ("Thanks!", "Thanks!"),  # the whole reply, not a sign-off
        (
            "Hi Ana,\nThanks!\nWe are interested, what does it cost for our whole team?\nJohn",
            "Hi Ana,\nThanks!\nWe are interested, what does it cost for our whole team?\nJohn",
        ),
        ("Sounds good.\nThanks,\nJohn", "Sounds good."),
        # bottom-posting: the new text follows the quote
        (
            "On Mon, Jan 5, 2026 at 10:00 AM Ana <ana@acme.io> wrote:\n> Can we talk?\n\nYes, Tuesday works.",
            "Yes, Tuesday works.",
        ),
        # inline answers keep the answers, drop the quoted lines
        ("> Would Tuesday work?\nYes.\n> And 10am?\nBetter 11.", "Yes.\nBetter 11."),
        ("> only a quote\n> nothing new", ""),
        # Portuguese, Dutch and Italian quoting, Outlook blocks, sign-offs and mobile signatures
        ("Sim.\n\nEm seg., 5 de jan. de 2026 às 10:00, Ana <ana@acme.io> escreveu:" + QUOTED, "Sim."),
        ("Ja.\n\nOp ma 5 jan 2026 om 10:00 schreef Ana <ana@acme.io>:" + QUOTED, "Ja."),
        (
            "Sim.\n\nDe: Ana\nEnviada em: segunda-feira, 5 de janeiro de 2026 10:00\nPara: Bob\nAssunto: "
            "Olá\n\nOlá",
            "Sim.",
        ),
        (
            "Ja.\n\nVan: Ana\nVerzonden: maandag 5 januari 2026 10:00\nAan: Bob\nOnderwerp: Hallo\n\nHallo",
            "Ja.",
        ),
        ("Sì.\n\nDa: Ana\nInviato: lunedì 5 gennaio 2026 10:00\nA: Bob\nOggetto: Ciao\n\nCiao", "Sì."),
        ("Pode ser.\n\nAtenciosamente,\nRita Sousa", "Pode ser."),
        ("Prima.\n\nMet vriendelijke groet,\nJeroen Bakker\nInkoop", "Prima."),
        ("Va bene.\n\nCordiali saluti\nGiulia Conti", "Va bene."),
        ("Combinado.\n\nEnviado do meu iPhone", "Combinado."),
        ("Goed.\n\nVerstuurd vanaf mijn iPhone", "Goed."),
        # a signature block without a sign-off
        ("Tuesday works.\n\nRobin Meyer\nSenior Buyer | Contoso Group\n+44 20 7946 0018", "Tuesday works."),
        (
            "Tuesday works.\n\nDoes 3pm suit you? Let me know.",
            "Tuesday works.\n\nDoes 3pm suit you? Let me know.",
        ),
        ("Ok.\n\nMonday at 3pm works", "Ok.\n\nMonday at 3pm works"),
        ("", ""),
    ],
)
def test_extract_reply_text(text, expected):
    assert extract_reply_text(text) == expected


def test_text_that_merely_mentions_writing_is_kept():
    text = "I wrote about this in our blog last week, have a look.\nOn Monday we can talk."
    assert extract_reply_text(text) == text


# --- unhappy paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n ", ""])
def test_empty_input(data):
    msg = parse_message(data)
    assert isinstance(msg, InboundMessage) and msg.error == "empty message" and msg.reply_text == ""


def test_garbage_bytes_never_raise():
    rng = random.Random(7)
    for size in (1, 10, 100, 1000, 20000):
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(size))
            msg = parse_message(data)
            assert isinstance(msg, InboundMessage)
            assert isinstance(parse_input(data), InboundMessage)


def test_truncated_samples_never_raise():
    rng = random.Random(11)
    for path in sorted(MESSAGES.glob("*.eml")):
        raw = path.read_bytes()
        for cut in sorted({rng.randrange(len(raw)) for _ in range(8)} | {len(raw) // 2}):
            assert isinstance(parse_message(raw[:cut]), InboundMessage)


def test_header_only_garbage_says_so():
    assert parse_message(b"\x00\x01\x02 not a message at all").error == "no message headers"


@pytest.mark.parametrize(
    "charset", ["rot13", "base64", "zlib", "idna", "utf-7", "x-user-defined", '""', "../../etc"]
)
def test_hostile_or_non_text_charsets(charset):
    raw = (
        f"From: a@b.c\nSubject: s\nContent-Type: text/plain; charset={charset}\n\nHello caf".encode()
        + b"\xe9\n"
    )
    msg = parse_message(raw)
    assert msg.error is None and msg.text.startswith("Hello caf")


def test_broken_base64_and_missing_closing_boundary():
    raw = (
        b"From: a@b.c\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XYZ\n\n"
        b"--XYZ\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        b"SGVsbG8g!!!d29ybGQ=\n--XYZ\nContent-Type: text/plain\n\nsecond part, never closed"
    )
    msg = parse_message(raw)
    assert msg.error is None and "second part" in msg.text


def test_deeply_nested_multipart_is_bounded():
    depth = 60
    head = b"From: a@b.c\nSubject: nested\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b0\n\n"
    body = b""
    for level in range(depth):
        body += f"--b{level}\nContent-Type: multipart/mixed; boundary=b{level + 1}\n\n".encode()
    body += f"--b{depth}\nContent-Type: text/plain\n\ndeep text\n--b{depth}--\n".encode()
    msg = parse_message(head + body)
    assert isinstance(msg, InboundMessage) and msg.error is None  # text too deep is skipped, not a crash


def test_naive_dates_are_utc_and_offsets_kept():
    assert parse_message(b"From: a@b.c\nDate: Tue, 06 Jan 2026 09:00:00 -0000\n\nx").date.tzinfo is not None
    moment = parse_message(b"From: a@b.c\nDate: Tue, 06 Jan 2026 09:00:00 +0530\n\nx").date
    assert moment.utcoffset() == timedelta(hours=5, minutes=30)


def test_decode_helpers():
    assert decode_bytes("é".encode("latin-1"), "iso-8859-1") == "é"
    assert decode_bytes("é".encode(), "us-ascii") == "é"  # declared ASCII, sent UTF-8
    assert decode_bytes(b"\x81\x8d", "nope") == "\x81\x8d"  # nothing fits: Latin-1 never fails
    assert decode_header_value("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"
    assert decode_header_value("=?utf-8?B?####?=") == "=?utf-8?B?####?="
    assert decode_header_value(None) == ""
