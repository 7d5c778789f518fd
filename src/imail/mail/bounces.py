"""Reading bounces: RFC 3464 delivery-status reports and the common non-standard formats. No database here.

Hard or soft is decided from the enhanced status code (RFC 3463) first, the diagnostic wording second:

- `delivered`: a positive report (`Action: delivered`, `relayed` or `expanded`; status 2.x.x).
- `delayed`: the reporting server is still trying (`Action: delayed`, "will retry", "Delivery incomplete").
  Not a failure: nothing should be retried or suppressed yet.
- `soft`: a failure that may pass later. All 4.x.x, and these 5.x.x exceptions, which say nothing bad about
  the address itself: 5.2.2 and any "mailbox full / over quota" wording (category `mailbox_full`: a full
  mailbox is conventionally retried, whatever class the server gave it), x.7.x security/policy rejections and
  spam blocks (`policy`, unless the wording says the user does not exist), 5.2.3 / 5.3.4 message too large
  (`policy`), 5.4.7 delivery time expired (`temporary`).
- `hard`: every other 5.x.x (5.1.1 unknown user, 5.1.2 bad domain, 5.2.1 disabled mailbox, 5.4.4 no route…).
- `unknown`: not a bounce, or a bounce that names no status and no recognisable wording.

Soft categories: `mailbox_full` (x.2.2 or quota wording), `greylisted` (greylisting wording, or `451 4.7.1`
without spam/policy wording), `policy` (x.7.x, spam/blocklist/reputation wording), `temporary` (any other
4.x.x), `unknown` (no code and no wording to go by).
"""

from __future__ import annotations

import base64
import quopri
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import HeaderParser
from typing import Literal, cast

from imail.mail.parsing import (
    InboundMessage,
    decode_bytes,
    decode_header_value,
    fold,
    message_headers,
    message_ids,
    parse_message,
    part_text,
)

BounceKind = Literal["hard", "soft", "delayed", "delivered", "unknown"]
SoftCategory = Literal["mailbox_full", "greylisted", "policy", "temporary", "unknown"]
BounceFormat = Literal["rfc3464", "gmail", "exchange", "postfix", "exim", "qmail", "generic", "none"]


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's line of a report."""

    recipient: str | None
    kind: BounceKind
    category: SoftCategory | None = None
    status_code: str | None = None  # enhanced status code, e.g. "5.1.1"
    smtp_code: int | None = None  # basic reply code, e.g. 550
    diagnostic: str | None = None
    action: str | None = None
    original_recipient: str | None = None
    remote_mta: str | None = None


@dataclass(frozen=True)
class Bounce:
    """What a message says about the delivery of one we sent. `is_bounce` is False for anything else."""

    is_bounce: bool = False
    kind: BounceKind = "unknown"
    category: SoftCategory | None = None  # for soft and delayed
    status_code: str | None = None
    smtp_code: int | None = None
    diagnostic: str | None = None
    recipient: str | None = None
    original_message_id: str | None = None
    format: BounceFormat = "none"
    recipients: list[RecipientStatus] = field(default_factory=list)
    error: str | None = None


NOT_A_BOUNCE = Bounce()

_ENHANCED = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
_SMTP_WITH_ENHANCED = re.compile(r"(?<![\w.])([245]\d\d)[ -]+([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)")
_SMTP_CODE = re.compile(r"(?<![\w.#])([45][0-5]\d)(?=[ -][A-Za-z<(#\[]|\s*$)", re.MULTILINE)
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

_UNKNOWN_USER = re.compile(
    r"user unknown|unknown user|no such user|no such mailbox|user not found|does not exist|doesn'?t exist|"
    r"not exist|unknown recipient|recipient not found|recipientnotfound|recip ?not ?found|invalid recipient|"
    r"invalid mailbox|mailbox not found|mailbox unavailable|mailbox is unavailable|address not found|"
    r"couldn'?t be found|could not be found|no mailbox|unrouteable address|bad destination mailbox|"
    r"account (has been |is )?disabled|account is inactive|inactive user|address rejected: user|"
    r"not a valid (mailbox|recipient|address)|unbekannte?r? (empfanger|benutzer)|existiert nicht|"
    r"destinataire inconnu|utilisateur inconnu|n'existe pas|usuario desconocido|no existe"
)
_MAILBOX_FULL = re.compile(
    r"mailbox (is )?full|mailbox full|quota exceeded|over ?quota|exceeded (its |the )?(storage|quota)|"
    r"insufficient (system )?storage|out of storage|mailbox size limit|storage (limit|quota)|is full|"
    r"postfach (ist )?voll|speicherplatz|boite (aux lettres )?pleine|buzon (esta )?lleno|casella piena"
)
_GREYLIST = re.compile(r"gr[ae]y[- ]?list")
_POLICY = re.compile(
    r"spam|blocked|block ?list|black ?list|blacklisted|listed (at|on|in)|reputation|policy|unsolicited|"
    r"spamhaus|barracuda|spamcop|access denied|content rejected|rejected (for|due to)|dmarc|\bspf\b|\bdkim\b|"
    r"rate limit|too many|unusual rate|not authorized|not permitted|prohibited|virus|malware|phish"
)
_RETRY_WORDING = re.compile(r"try again later|please retry|retry later|come back later|temporar")
_DELAYED_WORDING = re.compile(
    r"delivery incomplete|temporary problem delivering|will retry|will keep trying|still trying|"
    r"has not (yet )?been delivered|not yet been delivered|delivery (has been )?delayed|delivery delay|"
    r"delayed mail|will continue (delivery|to try)|no action is required on your part|warning: message|"
    r"retry (for|until)|will be retried|this is a warning only|zustellung verzogert|remise differee|"
    r"entrega retrasada"
)

_DAEMON_LOCALS = {
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "maildaemon",
    "postmaster",
    "mdaemon",
    "bounce",
    "bounces",
    "mail-delivery",
    "maildelivery",
}
_DAEMON_NAME = re.compile(
    r"mail delivery (system|subsystem|service)|mailer[- ]daemon|postmaster|microsoft outlook|"
    r"microsoft exchange|mail administrator|systemadministrator"
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery status notification|delivery failure|delivery has failed|"
    r"mail delivery failed|failure notice|returned mail|returned to sender|message not delivered|"
    r"could not be delivered|delivery incomplete|delivery delayed|delayed mail|warning: message|"
    r"non[- ]?deliver|delivery notification|delivery report|mail system error|"
    r"unzustellbar|nicht zustellbar|zustellung fehlgeschlagen|non remis|non distribuable|"
    r"echec de (la )?remise|"
    r"no se puede entregar|no entregado|error de entrega|mancato recapito|impossibile recapitare"
)
_BOUNCE_BODY = re.compile(
    r"delivery has failed to these recipients|could not be delivered|couldn'?t be delivered|"
    r"wasn'?t delivered|"
    r"was not delivered|the following address(\(es\)|es)? failed|wasn'?t able to deliver|permanent error|"
    r"permanent failure|undeliverable|delivery to the following recipients? failed|remote server returned|"
    r"following recipient\(s\) cannot be reached|did not reach some or all|has not (yet )?been delivered|"
    r"delivery incomplete|temporary problem delivering|address not found|message blocked|"
    r"this is the mail system|"
    r"mail delivery software|qmail-send|delivery status notification|unable to deliver|delivery failed|"
    r"nicht zugestellt|n'a pas pu etre remis|no se pudo entregar|non e stato possibile recapitare"
)
# Where a returned copy of the original message starts inside a plain-text bounce.
_COPY_MARKER = re.compile(
    r"^\s*(-{2,}\s*below this line is a copy of the message|-{2,}\s*this is a copy of the message|"
    r"-{2,}\s*original message\s*-{2,}|-{2,}\s*the header of the original message is following|"
    r"original message headers:|-{2,}\s*original message follows|-{2,}\s*undelivered message headers|"
    r"-{2,}\s*forwarded message|-{2,}\s*message truncated)",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_LINE_IDS = re.compile(
    r"(?im)^\s*(message-id|in-reply-to|references|x-ms-exchange-\S+|thread-\S+):.*$"
)


def parse_bounce(message: InboundMessage | bytes | str) -> Bounce:
    """A bounce (or delivery report) in any of the formats this module knows. Never raises."""
    try:
        parsed = message if isinstance(message, InboundMessage) else parse_message(message)
        if parsed.raw is None:
            return Bounce(error=parsed.error or "unreadable message")
        return _parse_bounce(parsed)
    except Exception as exc:  # bad input is a result, not an exception
        return Bounce(error=f"unreadable bounce: {type(exc).__name__}")


def report_of(message: InboundMessage) -> Bounce:
    """What a parsed message reports as a delivery report; nothing (and no error) for input that was not read
    as a message."""
    return parse_bounce(message) if message.raw is not None else Bounce()


def _parse_bounce(message: InboundMessage) -> Bounce:
    msg = message.raw
    assert msg is not None
    status_parts, original_parts = _report_parts(msg)
    original_id = _original_message_id(original_parts, message.text)
    if status_parts or _is_report(msg):
        recipients = [r for part in status_parts for r in _dsn_recipients(part)]
        if recipients:
            return _summarise(recipients, original_id, "rfc3464")
        # A report with no per-recipient fields: fall back on its human-readable text, if it says anything.
        fallback = _text_bounce(message, original_id)
        if fallback.kind != "unknown":
            return fallback
        return Bounce(
            is_bounce=True,
            original_message_id=original_id,
            format="rfc3464",
            error="delivery report without per-recipient fields",
        )
    if not _looks_like_bounce(message):
        return NOT_A_BOUNCE
    return _text_bounce(message, original_id)


# --- RFC 3464 -------------------------------------------------------------------------------------------


def _is_report(msg: Message) -> bool:
    try:
        return msg.get_content_type() == "multipart/report" and (
            str(msg.get_param("report-type") or "").lower() in ("delivery-status", "global-delivery-status")
        )
    except Exception:
        return False


def _report_parts(msg: Message) -> tuple[list[Message], list[Message]]:
    """Delivery-status parts and returned-original parts, outside any attached (forwarded) message."""
    status: list[Message] = []
    originals: list[Message] = []

    def visit(part: Message, depth: int) -> None:
        if depth > 10:
            return
        try:
            ctype = part.get_content_type()
        except Exception:
            return
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            status.append(part)
            return
        if ctype in (
            "message/rfc822",
            "message/global",
            "text/rfc822-headers",
            "message/rfc822-headers",
            "message/global-headers",
        ):
            originals.append(part)
            return
        if ctype.startswith("message/"):
            return
        if part.is_multipart():
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    visit(sub, depth + 1)

    visit(msg, 0)
    return status, originals


def _field_blocks(part: Message) -> list[dict[str, str]]:
    """The header blocks of a delivery-status part: per-message first, then one per recipient."""
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if (
        encoding in ("base64", "quoted-printable")
        or part.get_content_type() == "message/global-delivery-status"
    ):
        return _blocks_from_text(_encoded_payload_text(part, encoding))
    if isinstance(payload, list) and payload and all(isinstance(p, Message) for p in payload):
        parts = cast(list[Message], payload)
        for block in parts:
            fields = {k.lower(): v[0] for k, v in message_headers(block).items() if v}
            if fields:
                blocks.append(fields)
        # compat32 sometimes leaves text it could not split as the last block's body
        tail = parts[-1].get_payload()
        if isinstance(tail, str) and ":" in tail:
            blocks.extend(_blocks_from_text(tail))
        return blocks
    return _blocks_from_text(part_text(part))


def _encoded_payload_text(part: Message, encoding: str) -> str:
    """A message/* part's body as the sender wrote it (the parser may have split it into sub-messages)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        chunks = []
        for sub in payload:
            try:
                chunks.append(sub.as_string() if isinstance(sub, Message) else str(sub))
            except Exception:
                continue
        text = "".join(chunks)
    else:
        text = str(payload or "")
    data = text.encode("ascii", "surrogateescape")
    try:
        if encoding == "base64":
            data = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", data) + b"==")
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except Exception:
        pass
    return decode_bytes(data, "utf-8")


def _blocks_from_text(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields: dict[str, str] = {}
        last = None
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and last:
                fields[last] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep and re.fullmatch(r"[A-Za-z0-9-]+", name.strip()):
                last = name.strip().lower()
                fields.setdefault(last, decode_header_value(value.strip()))
        if fields:
            blocks.append(fields)
    return blocks


def _typed_value(value: str | None) -> str | None:
    """`rfc822; ana@example.com` → `ana@example.com`; `smtp; 550 …` → `550 …`."""
    if not value:
        return None
    _, sep, rest = value.partition(";")
    text = (rest if sep else value).strip()
    return text or None


def _address(value: str | None) -> str | None:
    text = _typed_value(value)
    if not text:
        return None
    found = _ADDRESS.search(text)
    return found.group(0).lower() if found else text.strip("<>").lower() or None


def _dsn_recipients(part: Message) -> list[RecipientStatus]:
    recipients = []
    for fields in _field_blocks(part):
        if not ({"final-recipient", "original-recipient", "action"} & fields.keys()):
            continue  # the per-message block (Reporting-MTA, Arrival-Date…)
        diagnostic = _typed_value(fields.get("diagnostic-code"))
        status = _status_from(fields.get("status"), diagnostic)
        smtp_code = _smtp_code(diagnostic)
        action = (fields.get("action") or "").strip().lower() or None
        kind, category = classify(status, smtp_code, diagnostic, action)
        recipients.append(
            RecipientStatus(
                recipient=_address(fields.get("final-recipient"))
                or _address(fields.get("original-recipient")),
                original_recipient=_address(fields.get("original-recipient")),
                action=action,
                status_code=status,
                smtp_code=smtp_code,
                diagnostic=_clip(diagnostic),
                kind=kind,
                category=category,
                remote_mta=_typed_value(fields.get("remote-mta")),
            )
        )
    return recipients


def _status_from(status_field: str | None, diagnostic: str | None) -> str | None:
    status = _first_enhanced(status_field)
    detailed = _first_enhanced(diagnostic)
    if status is None:
        return detailed
    if detailed and status.endswith(".0.0") and detailed[0] == status[0]:
        return detailed  # a generic Status with a specific code in the diagnostic
    return status


def _first_enhanced(text: str | None) -> str | None:
    if not text:
        return None
    found = _SMTP_WITH_ENHANCED.search(text)
    if found:
        return found.group(2)
    found = _ENHANCED.search(text)
    return ".".join(found.groups()) if found else None


def _smtp_code(text: str | None) -> int | None:
    if not text:
        return None
    found = _SMTP_WITH_ENHANCED.search(text) or _SMTP_CODE.search(text)
    return int(found.group(1)) if found else None


def _clip(text: str | None, limit: int = 500) -> str | None:
    if not text:
        return None
    one_line = re.sub(r"\s+", " ", text).strip()
    return one_line[:limit] or None


# --- classification -------------------------------------------------------------------------------------


def classify(
    status: str | None, smtp_code: int | None, diagnostic: str | None, action: str | None
) -> tuple[BounceKind, SoftCategory | None]:
    """Kind and soft category from an enhanced status, a basic SMTP code, the diagnostic and the action."""
    text = fold(diagnostic or "")
    action = (action or "").lower()
    if action in ("delivered", "relayed", "expanded"):
        return "delivered", None
    klass = status[0] if status else (str(smtp_code)[0] if smtp_code else None)
    if klass == "2":
        return (
            ("delayed", _soft_category(status, smtp_code, text))
            if action == "delayed"
            else ("delivered", None)
        )
    delayed = action == "delayed"
    if klass == "5" and not delayed:
        soft = _soft_exception(status, text)
        return ("soft", soft) if soft else ("hard", None)
    if klass == "4" or delayed:
        return ("delayed" if delayed else "soft"), _soft_category(status, smtp_code, text)
    # no code at all: go by the wording
    if _MAILBOX_FULL.search(text):
        return "soft", "mailbox_full"
    if _UNKNOWN_USER.search(text):
        return "hard", None
    if _GREYLIST.search(text):
        return "soft", "greylisted"
    if _POLICY.search(text):
        return "soft", "policy"
    if _RETRY_WORDING.search(text):
        return "soft", "temporary"
    return "unknown", None


def _soft_exception(status: str | None, text: str) -> SoftCategory | None:
    """The 5.x.x failures treated as soft (see the module docstring), or None for a hard bounce."""
    subject_detail = status[2:] if status else ""
    if subject_detail == "2.2" or _MAILBOX_FULL.search(text):
        return "mailbox_full"
    if subject_detail.startswith("7."):
        return None if _UNKNOWN_USER.search(text) else "policy"
    if subject_detail in ("2.3", "3.4"):
        return "policy"
    if subject_detail == "4.7":
        return "temporary"
    if (
        subject_detail in ("", "0.0", "3.0", "5.0")
        and _POLICY.search(text)
        and not _UNKNOWN_USER.search(text)
    ):
        return "policy"  # a spam block under a generic code says nothing about the address
    return None


def _soft_category(status: str | None, smtp_code: int | None, text: str) -> SoftCategory:
    subject_detail = status[2:] if status else ""
    if subject_detail == "2.2" or _MAILBOX_FULL.search(text):
        return "mailbox_full"
    if _GREYLIST.search(text):
        return "greylisted"
    if smtp_code == 451 and subject_detail == "7.1" and not _POLICY.search(text):
        return "greylisted"  # the classic greylisting reply: "451 4.7.1 Please try again later"
    if subject_detail.startswith("7.") or _POLICY.search(text):
        return "policy"
    if status or smtp_code:
        return "temporary"
    return "temporary" if _RETRY_WORDING.search(text) or _DELAYED_WORDING.search(text) else "unknown"


# --- non-standard bounces -------------------------------------------------------------------------------


def _looks_like_bounce(message: InboundMessage) -> bool:
    local = (message.from_email or "").partition("@")[0]
    daemon = (
        local in _DAEMON_LOCALS
        or local.startswith("microsoftexchange")
        or bool(_DAEMON_NAME.search(fold(message.from_name)))
        or (message.header("return-path") or "").strip() == "<>"
    )
    subject = bool(_BOUNCE_SUBJECT.search(fold(message.subject)))
    body = bool(_BOUNCE_BODY.search(fold(message.text[:20000])))
    if daemon:
        return subject or body
    # From a person's address: only a forwarded-looking report with a status code, never a reply ("Re: …")
    is_reply = bool(re.match(r"\s*(re|aw|sv|antw|rif|r|fw|fwd|wg|tr|rv)\s*:", message.subject, re.IGNORECASE))
    has_code = bool(_SMTP_WITH_ENHANCED.search(message.text) or _ENHANCED.search(message.text))
    return subject and body and has_code and not is_reply


def _format(message: InboundMessage, body: str) -> BounceFormat:
    sender = message.from_email or ""
    if (
        sender.endswith(("@googlemail.com", "@google.com", "@gmail.com"))
        or "the response from the remote server was" in body
        or re.search(
            r"\*\* (address not found|message not delivered|message blocked|delivery incomplete)", body
        )
    ):
        return "gmail"
    if (
        "remote server returned" in body
        or "delivery has failed to these recipients" in body
        or "diagnostic information for administrators" in body
        or "did not reach some or all" in body
        or sender.startswith("microsoftexchange")
    ):
        return "exchange"
    if "qmail-send" in body or "wasn't able to deliver your message" in body:
        return "qmail"
    if (
        "mail delivery software" in body
        or "following address(es) failed" in body
        or "smtp error from remote mail server" in body
    ):
        return "exim"
    if "this is the mail system at host" in body or "postfix program" in body:
        return "postfix"
    return "generic"


def _text_bounce(message: InboundMessage, original_id: str | None) -> Bounce:
    text = message.text or ""
    marker = _COPY_MARKER.search(text)
    body = text[: marker.start()] if marker else text
    body = _HEADER_LINE_IDS.sub("", body)
    folded = fold(body)
    delayed = bool(_DELAYED_WORDING.search(folded)) or bool(_DELAYED_WORDING.search(fold(message.subject)))
    ignore = {a.lower() for a in [message.from_email or "", *message.to, *message.cc]}
    failed_header = ",".join(message.headers.get("x-failed-recipients", []))
    candidates = [a.lower() for a in _ADDRESS.findall(failed_header)]
    for address in _ADDRESS.findall(body):
        address = address.lower().rstrip(".")
        local = address.partition("@")[0]
        if address not in candidates and address not in ignore and local not in _DAEMON_LOCALS:
            candidates.append(address)
    recipients = [_text_recipient(body, address, delayed) for address in candidates[:20]]
    if not recipients:
        recipients = [_text_recipient(body, None, delayed)]
    summary = _summarise(recipients, original_id, _format(message, fold(text)))
    return summary


def _text_recipient(body: str, address: str | None, delayed: bool) -> RecipientStatus:
    """The status nearest after the recipient's first mention (or the first in the text)."""
    start = 0
    if address:
        found = body.lower().find(address)
        start = max(found, 0)
    window = body[start : start + 1500]
    status, smtp_code, diagnostic = _code_and_diagnostic(window)
    if status is None and smtp_code is None and start:
        status, smtp_code, diagnostic = _code_and_diagnostic(body)
    wording = diagnostic or _clip(window, 1500)
    kind, category = classify(status, smtp_code, wording, "delayed" if delayed else "failed")
    return RecipientStatus(
        recipient=address,
        kind=kind,
        category=category,
        status_code=status,
        smtp_code=smtp_code,
        diagnostic=diagnostic,
        action="delayed" if delayed else "failed",
    )


def _code_and_diagnostic(text: str) -> tuple[str | None, int | None, str | None]:
    found = _SMTP_WITH_ENHANCED.search(text) or _ENHANCED.search(text) or _SMTP_CODE.search(text)
    if not found:
        return None, None, None
    line_start = text.rfind("\n", 0, found.start()) + 1
    lines = text[line_start:].split("\n")
    diagnostic = [lines[0]]
    for line in lines[1:4]:  # continuation lines (indented, or wrapped mid-sentence)
        if not line.strip() or _ADDRESS.fullmatch(line.strip().strip("<>:")):
            break
        wrapped = line[:1].islower() and not diagnostic[-1].rstrip().endswith((".", "'", '"'))
        if line[:1] in (" ", "\t") or wrapped:
            diagnostic.append(line)
        else:
            break
    joined = " ".join(part.strip() for part in diagnostic)
    return _first_enhanced(joined) or _first_enhanced(found.group(0)), _smtp_code(joined), _clip(joined)


# --- summary --------------------------------------------------------------------------------------------

_SEVERITY = {"hard": 0, "soft": 1, "delayed": 2, "delivered": 3, "unknown": 4}


def _summarise(recipients: list[RecipientStatus], original_id: str | None, fmt: BounceFormat) -> Bounce:
    primary = min(recipients, key=lambda r: _SEVERITY[r.kind])
    return Bounce(
        is_bounce=True,
        kind=primary.kind,
        category=primary.category if primary.kind in ("soft", "delayed") else None,
        status_code=primary.status_code,
        smtp_code=primary.smtp_code,
        diagnostic=primary.diagnostic,
        recipient=primary.recipient,
        original_message_id=original_id,
        format=fmt,
        recipients=recipients,
    )


def _original_message_id(parts: list[Message], text: str) -> str | None:
    """The Message-ID of the message that bounced: the returned copy or headers, else the report's text."""
    for part in parts:
        try:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = message_headers(payload[0])
            else:
                headers = message_headers(HeaderParser(policy=policy.compat32).parsestr(part_text(part)))
            ids = message_ids(" ".join(headers.get("message-id", [])))
            if ids:
                return ids[0]
        except Exception:
            continue
    found = re.search(r"(?im)^\s*message-id:\s*(<[^<>\s]+>)", text or "")
    return found.group(1) if found else None
