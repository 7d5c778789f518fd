"""Building outbound messages: headers for threading and RFC 8058 one-click unsubscribe, HTML + text parts."""

from __future__ import annotations

import binascii
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache

from imail.kit.clock import utcnow
from imail.kit.ids import new_ulid
from imail.mail.addresses import ascii_address, ascii_domain


def make_message_id(domain: str) -> str:
    return f"<{new_ulid().lower()}@{ascii_domain(domain)}>"


_BOUNDARY_ALPHABET = string.ascii_letters + string.digits


def make_boundary() -> str:
    """A boundary shaped like Thunderbird's (twelve dashes, 24 random letters and digits): nothing in it names
    the software that sent the message, a fingerprint filters could learn. 24 random characters (~143 bits)
    never occur in a part by chance."""
    return "-" * 12 + "".join(secrets.choice(_BOUNDARY_ALPHABET) for _ in range(24))


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass
class Outbound:
    from_email: str
    to_email: str
    subject: str
    text: str
    message_id: str
    from_name: str = ""
    to_name: str = ""
    html: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def build(message: Outbound) -> bytes:
    """The message as RFC 5322 bytes with CRLF line ends: text, or multipart/alternative text + HTML.

    Written directly rather than through `email.message.EmailMessage`, which spent most of a sending worker's
    CPU in its header policy machinery, and RFC 2047-encodes a long List-Unsubscribe URL it cannot fold, so
    that mail clients no longer see the link. Header values come from templates and lead data: line breaks in
    them are flattened so that no value can add a header."""
    lines = [
        f"From: {_address(message.from_name, message.from_email)}",
        f"To: {_address(message.to_name, message.to_email)}",
        f"Subject: {_unstructured(message.subject)}",
        f"Date: {_date(utcnow().replace(microsecond=0))}",
        f"Message-ID: {_one_line(message.message_id)}",
    ]
    if message.in_reply_to:
        lines.append(f"In-Reply-To: {_one_line(message.in_reply_to)}")
    if message.references:
        lines.append(f"References: {_folded([_one_line(r) for r in message.references], ' ')}")
    targets = []
    if message.unsubscribe_mailto:
        targets.append(f"<mailto:{_one_line(message.unsubscribe_mailto)}>")
    if message.unsubscribe_url:
        targets.append(f"<{_one_line(message.unsubscribe_url)}>")
    if targets:
        lines.append(f"List-Unsubscribe: {_folded(targets, ', ')}")
    if message.unsubscribe_url:
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    for name, value in message.headers.items():
        lines.append(f"{_one_line(name)}: {_unstructured(value)}")
    lines.append("MIME-Version: 1.0")
    if message.html is None:
        lines += _part("plain", message.text)
    else:
        boundary = make_boundary()
        lines += [f'Content-Type: multipart/alternative; boundary="{boundary}"', "", f"--{boundary}"]
        lines += _part("plain", message.text)
        lines.append(f"--{boundary}")
        lines += _part("html", message.html)
        lines.append(f"--{boundary}--\r\n")
    return "\r\n".join(lines).encode("utf-8")


@lru_cache(maxsize=4)
def _date(moment: datetime) -> str:
    """The Date header's text, made once a second rather than once a message."""
    return format_datetime(moment)


_MAX_LINE = 78  # RFC 5322's recommended line length; 998 is the hard limit


def _one_line(value: str) -> str:
    return " ".join(value.splitlines()) if ("\n" in value or "\r" in value) else value


def _unstructured(value: str) -> str:
    """Printable ASCII as it is; anything else as RFC 2047 encoded words, folded."""
    value = _one_line(value)
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", maxlinelen=_MAX_LINE).encode(linesep="\r\n")


def _address(name: str, email: str) -> str:
    email = _one_line(email)
    encoded = ascii_address(email)
    if (
        encoded is None
    ):  # RFC 6532 (UTF-8 in the header): only an SMTPUTF8 session may carry it, and ours refuse it
        return f"{_unstructured(name)} <{email}>" if name else f"<{email}>"
    return formataddr((_one_line(name), encoded), charset="utf-8")


def _folded(items: list[str], separator: str) -> str:
    """Items joined, one per line when together they would make a long line (a URL is never split)."""
    joined = separator.join(items)
    return joined if len(joined) <= _MAX_LINE - 20 else (separator.rstrip() + "\r\n ").join(items)


def _part(subtype: str, content: str) -> list[str]:
    """The header lines, blank line and body of a text part: 7bit when it is short-lined ASCII, else
    quoted-printable UTF-8."""
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    if text.isascii() and max(map(len, text.split("\n"))) <= 998:
        encoding, body = "7bit", text
    else:
        encoding, body = (
            "quoted-printable",
            binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"),
        )
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        f"Content-Transfer-Encoding: {encoding}",
        "",
        body.replace("\n", "\r\n"),
    ]
