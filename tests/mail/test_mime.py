"""Outbound messages as bytes: what a mail client parses out of them is exactly what was asked for."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

from imail.mail.mime import Outbound, build, make_message_id

TOKEN_URL = "https://t.acme.test/u/" + "k" * 160  # as long as real signed tokens get


def parse(data: bytes):
    return message_from_bytes(data, policy=default)


def outbound(**fields) -> Outbound:
    values = dict(
        from_email="sam@acme.test",
        from_name="Sam Seller",
        to_email="ana@example.org",
        to_name="Ana Müller",
        subject="Quick question",
        text="Hi Ana,\n\nA short note.\n",
        message_id="<01hx@acme.test>",
    )
    values.update(fields)
    return Outbound(**values)


def test_text_and_html_round_trip_with_threading_and_unsubscribe_headers():
    html = (
        "<p>Hi Ana,</p><p>"
        + "<a href='https://t.acme.test/t/c/"
        + "x" * 120
        + "'>the demo</a> " * 30
        + "</p>"
    )
    data = build(
        outbound(
            html=html,
            in_reply_to="<01a@acme.test>",
            references=["<01a@acme.test>", "<01b@acme.test>"],
            unsubscribe_url=TOKEN_URL,
            unsubscribe_mailto="sam@acme.test?subject=unsubscribe",
        )
    )
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    msg = parse(data)
    assert (msg["From"], msg["To"]) == ("Sam Seller <sam@acme.test>", "Ana Müller <ana@example.org>")
    assert (msg["Subject"], msg["Message-ID"], msg["In-Reply-To"]) == (
        "Quick question",
        "<01hx@acme.test>",
        "<01a@acme.test>",
    )
    assert msg["References"] == "<01a@acme.test> <01b@acme.test>"
    # The one-click link stays a plain URL however long (never RFC 2047-encoded, which clients can't follow).
    assert msg["List-Unsubscribe"] == f"<mailto:sam@acme.test?subject=unsubscribe>, <{TOKEN_URL}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hi Ana,\n\nA short note.\n"
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == html + "\n"


def test_non_ascii_and_long_values_are_encoded_and_decode_back():
    subject = "Grüße aus Köln — " + "ein längerer Betreff " * 12
    text = "Danke für Ihre Zeit,   \n" + "ü" * 2000 + "\n"
    msg = parse(
        build(
            outbound(
                subject=subject,
                text=text,
                from_name='Sam, "the" Seller',
                references=[f"<{i:040d}@acme.test>" for i in range(40)],
            )
        )
    )
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == 'Sam, "the" Seller'
    assert msg["References"].split() == [f"<{i:040d}@acme.test>" for i in range(40)]
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().replace("\r\n", "\n") == text  # trailing spaces and long lines survive


def test_line_breaks_in_values_cannot_add_headers():
    msg = parse(
        build(
            outbound(
                subject="Hello\r\nBcc: victim@example.org",
                to_name="Ana\nX-Evil: 1",
                headers={"X-Imail-Tag": "a\r\nReply-To: evil@example.org"},
            )
        )
    )
    assert msg["Bcc"] is None and msg["X-Evil"] is None and msg["Reply-To"] is None
    assert msg["Subject"] == "Hello Bcc: victim@example.org"
    assert msg["X-Imail-Tag"] == "a Reply-To: evil@example.org"


def test_each_message_has_its_own_boundary():
    first, second = (parse(build(outbound(html="<p>x</p>"))) for _ in range(2))
    assert first.get_boundary() != second.get_boundary()


def test_internationalized_addresses_in_headers():
    assert make_message_id("bücher.example").endswith("@xn--bcher-kva.example>")
    assert make_message_id("acme.example").endswith("@acme.example>")
    assert make_message_id("not a domain ✓").endswith("@invalid>")  # never an 8-bit Message-ID
    idn = message_from_bytes(
        build(
            Outbound(
                from_email="ana@bücher.example",
                to_email="bo@bücher.example",
                to_name="Bo",
                subject="Hi",
                text="hi",
                message_id="<a@b>",
            )
        ),
        policy=default,
    )
    assert (idn["From"], idn["To"]) == ("ana@xn--bcher-kva.example", "Bo <bo@xn--bcher-kva.example>")
    # A Unicode local part only an SMTPUTF8 session could carry: the message still builds (the envelope
    # refuses it).
    utf8 = build(
        Outbound(
            from_email="ana@acme.example",
            to_email="jörg@acme.example",
            to_name="Jörg",
            subject="Hi",
            text="hi",
            message_id="<a@b>",
        )
    )
    assert "To: =?utf-8?b?SsO2cmc=?= <jörg@acme.example>".encode() in utf8
