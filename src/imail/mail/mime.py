"""Building outbound messages: headers for threading and RFC 8058 one-click unsubscribe, HTML + text parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from ulid import ULID

from imail.kit.clock import utcnow


def make_message_id(domain: str) -> str:
    return f"<{str(ULID()).lower()}@{domain}>"


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


def _address(name: str, email: str) -> Address:
    local, _, domain = email.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


def build(message: Outbound) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _address(message.from_name, message.from_email)
    msg["To"] = _address(message.to_name, message.to_email)
    msg["Subject"] = message.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message.message_id
    if message.in_reply_to:
        msg["In-Reply-To"] = message.in_reply_to
    if message.references:
        msg["References"] = " ".join(message.references)
    targets = []
    if message.unsubscribe_mailto:
        targets.append(f"<mailto:{message.unsubscribe_mailto}>")
    if message.unsubscribe_url:
        targets.append(f"<{message.unsubscribe_url}>")
    if targets:
        msg["List-Unsubscribe"] = ", ".join(targets)
    if message.unsubscribe_url:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in message.headers.items():
        msg[name] = value
    msg.set_content(message.text)
    if message.html is not None:
        msg.add_alternative(message.html, subtype="html")
    return msg
