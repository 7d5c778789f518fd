"""Parsing inbound RFC 822 messages (any charset) and cutting a reply down to its new text. No database here.

Nothing in this module raises on bad input: a message that cannot be read comes back as an `InboundMessage`
with `error` set and empty fields, so the IMAP reader can record it and move on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from imail.mail.html import html_to_text

MAX_PARTS = 200  # a message with more MIME parts than this is read up to here (bounded work per message)
MAX_DEPTH = 12

# Charset labels seen in the wild that Python does not know, or knows under another name.
_CHARSET_ALIASES = {
    "unknown-8bit": None,
    "x-unknown": None,
    "unknown": None,
    "x-user-defined": None,
    "default": None,
    "us-ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "utf8": "utf-8",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
}


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: the declared charset if Python knows it and it fits, else UTF-8, else Windows-1252."""
    candidates: list[str] = []
    if charset:
        name = charset.strip().strip('"').lower()
        name = _CHARSET_ALIASES.get(name, name) or ""
        if name:
            candidates.append(name)
    candidates += ["utf-8", "cp1252"]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except Exception:  # LookupError, UnicodeError, and codecs that are not text encodings
            continue
    return data.decode("latin-1")


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching wording in any of the supported languages."""
    folded = text.casefold()
    if (
        folded.isascii()
    ):  # nothing to decompose: the common case, kept cheap (it runs per line of every message)
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def decode_header_value(raw: str | None) -> str:
    """A raw header value (RFC 2047 encoded words, raw 8-bit bytes, folding) as one line of text."""
    if raw is None:
        return ""
    value = str(raw)
    if any("\udc80" <= c <= "\udcff" for c in value):  # raw 8-bit bytes kept by the parser as surrogates
        value = _decode_8bit_runs(value.encode("ascii", "surrogateescape"))
    value = re.sub(r"\r?\n[ \t]+", " ", value)
    try:
        chunks = decode_header(value)
    except Exception:
        return _one_line(value)
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset is None:
            parts.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            parts.append(decode_bytes(chunk, charset))
    return _one_line("".join(parts)) or _one_line(value)  # an undecodable encoded word: keep it as written


def _decode_8bit_runs(data: bytes) -> str:
    """Raw 8-bit header bytes, run by run: UTF-8 where it fits, else Windows-1252 (mixed headers exist)."""
    return re.sub(
        rb"[\x80-\xff]+",
        lambda m: decode_bytes(m.group(0)).encode("utf-8", "surrogatepass"),
        data,
    ).decode("utf-8", "replace")


def _one_line(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


_MSG_ID = re.compile(r"<[^<>\s]+>")


def message_ids(value: str | None) -> list[str]:
    """The `<id>` tokens of a Message-ID, In-Reply-To or References value, in order, without duplicates."""
    if not value:
        return []
    found = _MSG_ID.findall(value)
    if not found:
        bare = value.strip().split()
        found = [f"<{bare[0]}>"] if len(bare) == 1 and "@" in bare[0] else []
    seen: list[str] = []
    for item in found:
        if item not in seen:
            seen.append(item)
    return seen


@dataclass(frozen=True)
class InboundMessage:
    """What the IMAP reader needs from one inbound message."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    from_email: str | None = None  # lower-cased
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None  # timezone-aware; naive Date headers are read as UTC
    auto_submitted: str | None = None
    headers: Mapping[str, list[str]] = field(default_factory=dict)  # lower-cased name → decoded values
    content_type: str = "text/plain"
    text: str = ""  # the whole plain-text body (from text/plain, else derived from text/html)
    html: str | None = None
    reply_text: str = ""  # the new text only: quoted history and signature cut
    is_rfc822: bool = True  # False when the input was plain text, not a message
    error: str | None = None  # why the input could not be read; the other fields are then empty
    raw: Message | None = field(default=None, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def is_mail(self) -> bool:
        """A message that was read as one: not plain text, not input that could not be read."""
        return self.is_rfc822 and not self.error

    @property
    def thread_ids(self) -> list[str]:
        """Message-IDs this message answers: In-Reply-To first, then References newest first."""
        ids: list[str] = []
        for item in ([self.in_reply_to] if self.in_reply_to else []) + list(reversed(self.references)):
            if item not in ids:
                ids.append(item)
        return ids


_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_KNOWN_HEADERS = {
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"received",
    b"return-path",
    b"mime-version",
    b"content-type",
    b"delivered-to",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"sender",
    b"x-mailer",
    b"auto-submitted",
    b"dkim-signature",
    b"arc-seal",
    b"authentication-results",
    b"x-original-to",
}


def looks_like_message(data: bytes) -> bool:
    """Whether bytes start with an RFC 822 header block (else they are taken as a plain-text reply)."""
    head = data[:16384].lstrip(b"\r\n")
    if head.startswith(b"From "):  # mbox separator line
        head = head.split(b"\n", 1)[1] if b"\n" in head else b""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    known = 0
    checked = 0
    for line in lines:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t") and checked:
            continue
        if not _HEADER_LINE.match(line):
            return False
        checked += 1
        if line.split(b":", 1)[0].strip().lower() in _KNOWN_HEADERS:
            known += 1
    return checked > 0 and known > 0


def parse_input(data: bytes | str) -> InboundMessage:
    """An RFC 822 message or, when the input has no header block, a plain-text reply."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if looks_like_message(raw):
        return parse_message(raw)
    text = data if isinstance(data, str) else decode_bytes(data)
    return parse_text(text)


def parse_text(text: str) -> InboundMessage:
    """A plain-text reply without headers (e.g. pasted into the CLI)."""
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    error = None if body.strip() else "empty message"
    return InboundMessage(text=body, reply_text=extract_reply_text(body), is_rfc822=False, error=error)


def parse_message(data: bytes | str) -> InboundMessage:
    """Parse RFC 822 bytes in any charset. Never raises: a failure is an empty result with `error` set."""
    try:
        return _parse_message(data)
    except Exception as exc:  # the parser's contract: bad input is a result, not an exception
        return InboundMessage(error=f"unreadable message: {type(exc).__name__}")


def read_message(data: bytes | str) -> Message:
    """The stdlib message tree (compat32: raw header values, no header-parsing exceptions)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    raw = raw.lstrip(b"\r\n")
    if raw.startswith(b"From ") and b"\n" in raw:
        raw = raw.split(b"\n", 1)[1]
    return BytesParser(policy=policy.compat32).parsebytes(raw)


def message_headers(msg: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(str(name).strip().lower(), []).append(decode_header_value(value))
    return headers


def _parse_message(data: bytes | str) -> InboundMessage:
    if not (data.strip() if isinstance(data, (bytes, str)) else data):
        return InboundMessage(error="empty message")
    msg = read_message(data)
    headers = message_headers(msg)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    from_name, from_email = _first_address(first("from"))
    plain, html_parts = body_parts(msg)
    html = "\n".join(html_parts) if html_parts else None
    text = plain if plain.strip() or not html else _safe_html_to_text(html)
    reply_source = plain if plain.strip() or not html else _safe_html_to_text(_drop_blockquotes(html))
    in_reply_to = message_ids(first("in-reply-to"))
    return InboundMessage(
        message_id=next(iter(message_ids(first("message-id"))), None),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids(" ".join(headers.get("references", []))),
        from_email=from_email,
        from_name=from_name,
        to=_addresses(headers.get("to", [])),
        cc=_addresses(headers.get("cc", [])),
        subject=first("subject") or "",
        date=_parse_date(first("date")),
        auto_submitted=first("auto-submitted"),
        headers=headers,
        content_type=_content_type(msg),
        text=text,
        html=html,
        reply_text=extract_reply_text(reply_source),
        error=None if headers else "no message headers",
        raw=msg,
    )


def _content_type(msg: Message) -> str:
    try:
        return msg.get_content_type()
    except Exception:
        return "text/plain"


def _first_address(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "", None
    for name, address in getaddresses([value]):
        if "@" in address:
            return name.strip(), address.strip().lower()
    return "", None


def _addresses(values: list[str]) -> list[str]:
    found: list[str] = []
    for _, address in getaddresses(values):
        address = address.strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except Exception:
        return None
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def part_text(part: Message) -> str:
    """A leaf part's decoded text (transfer encoding and charset), never raising."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(
        payload, bytes
    ):  # None: a multipart, or undecodable (decode=True gives bytes otherwise)
        raw = part.get_payload()
        if isinstance(raw, str):
            return decode_bytes(raw.encode("ascii", "surrogateescape")) if raw else ""
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(payload, charset).replace("\r\n", "\n").replace("\r", "\n")
    params = {k.lower(): (v or "").lower() for k, v in _params(part)}
    if params.get("format") == "flowed":
        text = _unflow(text, params.get("delsp") == "yes")
    return text


def _params(part: Message) -> list[tuple[str, str]]:
    try:
        return [(str(k), str(v)) for k, v in (part.get_params() or [])]
    except Exception:
        return []


def body_parts(msg: Message) -> tuple[str, list[str]]:
    """The inline text/plain parts joined, and the inline text/html parts, outside attached messages."""
    plain: list[str] = []
    html: list[str] = []
    budget = [MAX_PARTS]

    def visit(part: Message, depth: int) -> None:
        if budget[0] <= 0 or depth > MAX_DEPTH:
            return
        budget[0] -= 1
        ctype = _content_type(part)
        if ctype.startswith("message/"):
            return  # an attached or returned message is not this message's text
        if part.is_multipart():
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    visit(sub, depth + 1)
            return
        disposition = str(part.get("Content-Disposition", "")).strip().lower()
        if disposition.startswith("attachment"):
            return
        if ctype == "text/plain":
            plain.append(part_text(part))
        elif ctype == "text/html":
            html.append(part_text(part))

    visit(msg, 0)
    return "\n".join(p.rstrip("\n") for p in plain if p.strip()), html


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (a line ending in a space continues)."""
    out: list[str] = []
    buffer = ""
    for line in text.split("\n"):
        if line == "-- ":
            if buffer:
                out.append(buffer)
                buffer = ""
            out.append(line)
            continue
        if line.endswith(" "):
            buffer += line[:-1] if delsp else line
        else:
            out.append(buffer + line)
            buffer = ""
    if buffer:
        out.append(buffer)
    return "\n".join(out)


def _safe_html_to_text(markup: str) -> str:
    try:
        return html_to_text(markup)
    except Exception:
        return re.sub(r"<[^>]*>", " ", markup)


def _drop_blockquotes(markup: str) -> str:
    """Quoted history in HTML replies sits in <blockquote> (Gmail, Apple Mail, Thunderbird): drop it."""
    return re.sub(r"(?is)<blockquote\b.*</blockquote\s*>", "\n", markup)


# --- the new text of a reply -----------------------------------------------------------------------------

# Attribution lines that introduce quoted history ("On … wrote:"), matched on folded text (no accents).
_ATTRIBUTION = [
    re.compile(r"^on\b.{0,300}\b(wrote|writes)\s*:?$"),
    re.compile(r"^.{0,300}\b(wrote|writes)\s*:$"),
    re.compile(r"^am\b.{0,300}\bschrieb\b.{0,200}:$"),
    re.compile(r"^.{0,300}\b(schrieb|geschrieben)\b.{0,200}:$"),
    re.compile(r"^le\b.{0,300}\ba ecrit\s*:?$"),
    re.compile(r"^.{0,300}\ba ecrit\s*:$"),
    re.compile(r"^el\b.{0,300}\bescribio\s*:?$"),
    re.compile(r"^.{0,300}\bescribio\s*:$"),
    re.compile(r"^il\b.{0,300}\bha scritto\s*:?$"),
    re.compile(r"^op\b.{0,300}\bschreef\b.{0,200}:$"),
    re.compile(r"^em\b.{0,300}\bescreveu\s*:?$"),
    re.compile(r"^\d{4}-\d{2}-\d{2}\b.{0,200}<[^>\s]+@[^>\s]+>\s*:$"),
]
_ATTRIBUTION_START = re.compile(r"^(on|am|le|el|il|op|em)\b")

_SEPARATOR = re.compile(
    r"^[-=_ ]*(-{2,}|={2,})\s*(original message|ursprungliche nachricht|originalnachricht|message d'origine|"
    r"message original|mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|"
    r"forwarded message|weitergeleitete nachricht|message transfere|mensaje reenviado|messaggio inoltrato|"
    r"mensagem encaminhada|doorgestuurd bericht)"
    r"\s*(-{2,}|={2,})?[-= ]*$"
)
_UNDERSCORES = re.compile(r"^_{8,}$")
_OUTLOOK_FROM = re.compile(r"^(from|von|de|da|van|od|fra|fran)\s*:\s*\S")
_OUTLOOK_SENT = re.compile(
    r"^(sent|gesendet|envoye|enviad[oa]( em| "
    r"el)?|inviato|verzonden|verstuurd|date|datum|fecha|data|skickat|sendt)\s*:"
)
_OUTLOOK_OTHER = re.compile(
    r"^(to|an|a|para|aan|till|til|subject|betreff|objet|asunto|assunto|oggetto|onderwerp|amne|emne)\s*:"
)
_MOBILE = re.compile(
    r"^(sent from my|sent from (outlook|mail|yahoo)|get outlook for|sent via|sent with|"
    r"von meinem .{0,40}gesendet|gesendet von meinem|gesendet mit|"
    r"envoye de mon|envoye depuis|enviado desde|enviado con|inviato da|"
    r"verzonden (vanaf|met) mijn|verstuurd (vanaf|met) mijn|enviado do meu|enviado de meu|obter o outlook "
    r"para|"
    r"obtener outlook para|outlook (fur|pour|para|per|voor) (ios|android))"
)
_VALEDICTION = re.compile(
    r"^(best|best regards|kind regards|warm regards|regards|cheers|all the best|best wishes|sincerely|yours|"
    r"mit freundlichen grussen|freundliche grusse|viele grusse|beste grusse|liebe grusse|herzliche grusse|"
    r"gruss|grusse|lg|vg|mfg|"
    r"cordialement|bien cordialement|bien a vous|salutations|bonne journee|a bientot|"
    r"saludos|un saludo|saludos cordiales|atentamente|un abrazo|"
    r"cordiali saluti|distinti saluti|un saluto|saluti|buona giornata|"
    r"atenciosamente|cumprimentos|melhores cumprimentos|abraco|um abraco|abracos|att|"
    r"met vriendelijke groet|met vriendelijke groeten|vriendelijke groet|groet|groeten|hartelijke groet|mvg|"
    r"groetjes)[\s,.!-]*$"
)
# Thanks can be the message itself ("Thanks!"), so it only counts as a sign-off right before a short name.
_THANKS = re.compile(
    r"^(thanks|thank you|thanks again|many thanks|thx|danke|vielen dank|danke schon|merci|merci beaucoup|"
    r"gracias|muchas gracias|grazie|grazie mille|obrigado|obrigada|muito obrigado|bedankt|dank je|dank "
    r"u)[\s,.!-]*$"
)


def _norm(line: str) -> str:
    return fold(line.strip().strip("*").strip())


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines (1-3) form an attribution starting at `index`, or 0."""
    first = _norm(lines[index])
    if not first or len(first) > 400:
        return 0
    window = first
    for span in range(1, 4):
        if any(p.match(window) for p in _ATTRIBUTION):
            return span
        if span == 1 and not _ATTRIBUTION_START.match(first) and not re.match(r"^\d{4}-\d{2}-\d{2}\b", first):
            return 0  # only a line opening like an attribution may wrap onto the next
        nxt = index + span
        if nxt >= len(lines) or _quoted(lines[nxt]) or not lines[nxt].strip():
            return 0
        window = f"{window} {_norm(lines[nxt])}"
    return 0


def _outlook_block(lines: list[str], index: int) -> bool:
    """A `From: … Sent: … To: … Subject: …` header block of a quoted message (Outlook and friends)."""
    if not _OUTLOOK_FROM.match(_norm(lines[index])):
        return False
    window = [_norm(line) for line in lines[index + 1 : index + 7]]
    sent = any(_OUTLOOK_SENT.match(line) for line in window)
    other = any(_OUTLOOK_OTHER.match(line) for line in window)
    return sent and other


def extract_reply_text(text: str) -> str:
    """The new text of a reply: quoted history, `>` lines, attribution lines and the signature removed."""
    try:
        return _extract_reply_text(text)
    except Exception:
        return text.strip()


def _extract_reply_text(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    index = 0

    def has_content() -> bool:
        return any(line.strip() for line in out)

    while index < len(lines):
        line = lines[index]
        if _quoted(line):
            index += 1
            continue
        norm = _norm(line)
        span = _attribution_span(lines, index)
        if span:
            if has_content():
                break
            index += span  # bottom-posting: the new text follows the quote
            continue
        if line.rstrip() in ("--", "-- ") or _SEPARATOR.match(norm) or _MOBILE.match(norm):
            break
        if (
            _UNDERSCORES.match(norm)
            and index + 1 < len(lines)
            and any(_outlook_block(lines, j) for j in range(index + 1, min(index + 3, len(lines))))
        ):
            break
        if _outlook_block(lines, index):
            break
        out.append(line.rstrip())
        index += 1
    return _strip_signature_block(_strip_valediction(_strip_disclaimer(out)))


# A legal footer ("if you are not the intended recipient, notify the sender and delete this message") is
# boilerplate the sender never typed; its "delete" and "do not copy" read like an opt-out to a classifier. A
# paragraph is one when it opens with such a heading, or holds two or more of these cues (folded: lower case,
# no accents).
_DISCLAIMER_HEADING = re.compile(
    r"^\W*(confidentiality notice|confidentiality|disclaimer|legal notice|privileged (and|&) confidential|"
    r"vertraulichkeitshinweis|haftungsausschluss|avis de confidentialite|aviso legal|aviso de "
    r"confidencialidad|"
    r"aviso de confidencialidade|vertrouwelijkheid|disclaimer|avvertenza|informativa sulla riservatezza|"
    r"riservatezza)\b"
)
_DISCLAIMER_CUES = re.compile(
    r"confidential|privileged|intended (solely )?(only )?for|intended recipient|addressee|received "
    r"(this|it) in error|"
    r"by mistake|notify the sender|delete (this|the|it)|destroy (this|all)|prohibited|"
    r"vertraulich|empfanger|irrtumlich|den absender|vernichten|loschen sie diese|"
    r"confidentiel|destinataire|par erreur|l'expediteur|detruire|"
    r"confidencial|destinatario|por error|por engano|al remitente|o remetente|"
    r"vertrouwelijk|geadresseerde|abusievelijk|de afzender|"
    r"riservat|per errore|il mittente|distrugg"
)


def _strip_disclaimer(lines: list[str]) -> list[str]:
    """Cut from the first legal-footer paragraph on (never the first paragraph: a reply is not a footer)."""
    start = None
    cues = 0
    for index, line in enumerate(lines + [""]):
        if not line.strip():
            if start is not None and cues >= 2 and any(kept.strip() for kept in lines[:start]):
                return lines[:start]
            start, cues = None, 0
            continue
        norm = _norm(line)
        if start is None:
            start = index
            if _DISCLAIMER_HEADING.match(norm) and any(kept.strip() for kept in lines[:start]):
                return lines[:start]
        cues += len(_DISCLAIMER_CUES.findall(norm))
    return lines


def _strip_valediction(lines: list[str]) -> str:
    """Cut a closing sign-off ("Best regards," then a name) at the end; never the first line of the text."""
    content = [i for i, line in enumerate(lines) if line.strip()]
    for position in range(len(content) - 1, 0, -1):
        i = content[position]
        norm = _norm(lines[i])
        tail = [line.strip() for line in lines[i + 1 :] if line.strip()]
        if _VALEDICTION.match(norm):
            if len(tail) <= 6 and all(len(line) <= 80 for line in tail):
                lines = lines[:i]
            break
        if _THANKS.match(norm):
            if len(tail) <= 2 and all(
                len(line) <= 40 and not line.endswith((".", "?", "!")) for line in tail
            ):
                lines = lines[:i]
            break
        if len(tail) >= 6:
            break
    joined = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", joined)


# A signature's first line: a name, one to four words that start with a capital letter ("Robin Meyer", "M.
# Ferreira").
_NAME_LINE = re.compile(r"^[^\W\d_][\w'’.-]*(?: [^\W\d_][\w'’.-]*){0,3}$")


def _strip_signature_block(text: str) -> str:
    """Cut a signature block without a sign-off: the last paragraph, if it is at most five short lines opening
    with a name (title, company, phone below it) and the reply has text before it."""
    paragraphs = re.split(r"\n[ \t]*\n", text)
    if len(paragraphs) < 2:
        return text
    block = [line.strip() for line in paragraphs[-1].split("\n") if line.strip()]
    if not 1 <= len(block) <= 5 or any(len(line) > 70 for line in block):
        return text
    name = block[0]
    if not _NAME_LINE.match(name) or not all(word[0].isupper() for word in name.split()):
        return text
    if any(
        line.endswith(("?", "!")) or (line.endswith(".") and len(line.split()) >= 5) for line in block[1:]
    ):
        return text  # sentences, not a signature
    return "\n\n".join(paragraphs[:-1]).strip()
