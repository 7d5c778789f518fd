"""One inbound message → what it is: a bounce, an auto-reply, and the label of its new text. No database here.

This is what `imail replies classify` prints and what the IMAP reader will record. Order: a bounce is not a
reply (label `neutral`, source `bounce`); an out-of-office announced by headers or subject is `out_of_office`
without looking further; anything else is classified on its new text (quoted history and signature cut) by the
phrase rules, then the configured endpoint or the local model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from imail.config import Settings
from imail.kit.clock import utcnow
from imail.mail.autoreply import AutoReply, detect_auto_reply, find_return_date
from imail.mail.bounces import Bounce, report_of
from imail.mail.parsing import InboundMessage, parse_input
from imail.replies.classifier import (
    AUTO_REPLY_CONFIDENCE,
    Classification,
    ReplyClassifier,
    default_classifier,
)
from imail.replies.remote import classify_reply


@dataclass(frozen=True)
class Verdict:
    label: str
    confidence: float
    auto_reply: bool
    out_of_office: bool
    return_date: date | None
    source: str  # rules, model, remote, auto_reply, bounce, empty
    unsubscribe: (
        bool  # suppress the address: an unsubscribe label, or a strong unsubscribe reading under another
    )
    evidence: list[str]
    text: str  # the text that was classified
    bounce: Bounce
    auto: AutoReply
    message: InboundMessage = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "auto_reply": self.auto_reply}

    def explanation(self) -> dict[str, Any]:
        body = self.summary()
        body.update(
            source=self.source,
            evidence=self.evidence,
            unsubscribe=self.unsubscribe,
            out_of_office=self.out_of_office,
            return_date=self.return_date.isoformat() if self.return_date else None,
            auto_reply_signals=self.auto.signals,
            bounce=None
            if not self.bounce.is_bounce
            else {
                "kind": self.bounce.kind,
                "category": self.bounce.category,
                "status_code": self.bounce.status_code,
                "diagnostic": self.bounce.diagnostic,
                "recipient": self.bounce.recipient,
                "original_message_id": self.bounce.original_message_id,
                "format": self.bounce.format,
            },
            message_id=self.message.message_id,
            in_reply_to=self.message.in_reply_to,
            from_email=self.message.from_email,
            subject=self.message.subject or None,
            text=self.text,
        )
        return body


async def assess(
    data: bytes | str | InboundMessage,
    settings: Settings | None = None,
    *,
    client: httpx.AsyncClient | None = None,
    classifier: ReplyClassifier | None = None,
    today: date | None = None,
    bounce: Bounce | None = None,
) -> Verdict:
    """Bounce, auto-reply and label of one message (RFC 822 bytes in any charset, or plain text); `bounce` is
    what the message reports as a delivery report, when the caller has read that already."""
    message = data if isinstance(data, InboundMessage) else parse_input(data)
    if bounce is None:
        bounce = report_of(message)
    auto = detect_auto_reply(message, today)
    text = message.reply_text or message.text.strip()
    result = _settled(bounce, auto)
    if result is None:
        result = await classify_reply(text, settings, client=client, local=classifier or default_classifier())
    return _verdict(message, bounce, auto, text, result, today)


def assess_locally(
    message: InboundMessage, bounce: Bounce, classifier: ReplyClassifier | None = None
) -> Verdict:
    """`assess` without a classifier endpoint (the local model decides): synchronous, for a process with no
    event loop (imail.intake.parser_pool)."""
    auto = detect_auto_reply(message, None)
    text = message.reply_text or message.text.strip()
    result = _settled(bounce, auto) or (classifier or default_classifier()).classify(text.strip())
    return _verdict(message, bounce, auto, text, result, None)


def _settled(bounce: Bounce, auto: AutoReply) -> Classification | None:
    """The label a bounce or an announced absence has without reading the text."""
    if bounce.is_bounce:
        return Classification("neutral", 1.0, "bounce", [f"bounce: {bounce.kind}"])
    if auto.out_of_office and any(s.startswith(("header", "subject")) for s in auto.signals):
        return Classification("out_of_office", AUTO_REPLY_CONFIDENCE, "auto_reply", list(auto.signals))
    return None


def _verdict(
    message: InboundMessage,
    bounce: Bounce,
    auto: AutoReply,
    text: str,
    result: Classification,
    today: date | None,
) -> Verdict:
    # The label contract: an out_of_office label is an automatic absence reply, even when no header said so.
    absent = result.label == "out_of_office"
    return_date = auto.return_date
    if absent and not auto.out_of_office:
        reference = today or (message.date.date() if message.date else utcnow().date())
        return_date = find_return_date(f"{message.subject}\n{text}", reference)
    return Verdict(
        label=result.label,
        confidence=result.confidence,
        auto_reply=auto.is_auto_reply or bounce.is_bounce or absent,
        out_of_office=auto.out_of_office or absent,
        return_date=return_date,
        source=result.source,
        evidence=result.evidence,
        unsubscribe=result.unsubscribe,
        text=text,
        bounce=bounce,
        auto=auto,
        message=message,
    )
