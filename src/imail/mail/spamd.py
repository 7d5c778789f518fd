"""A client for SpamAssassin's spamd (the SPAMC/1.5 protocol: one request per connection, a command line,
headers, a blank line and the message; the answer likewise). `REPORT` is the command used: its answer carries
the score, the threshold and the table of rules that fired with their points."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORT = 783
_RESPONSE_LINE = re.compile(r"^SPAMD/(\d+\.\d+) (\d+) (.*)$")
_SPAM_HEADER = re.compile(r"^(True|False|Yes|No) ; (-?\d+(?:\.\d+)?) / (-?\d+(?:\.\d+)?)$", re.IGNORECASE)
# A row of the report's table: points, rule name, description
# ("  1.7 HTML_IMAGE_ONLY_16 BODY: HTML: images …").
_RULE_ROW = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_CONTINUATION = re.compile(r"^\s{10,}(\S.*)$")


class SpamdError(Exception):
    """spamd could not be reached or answered something other than a report."""


@dataclass(frozen=True)
class Rule:
    name: str
    score: float
    description: str


@dataclass(frozen=True)
class Report:
    score: float
    threshold: float
    is_spam: bool
    rules: list[Rule]


@dataclass(frozen=True)
class SpamdAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> SpamdAddress:
        """`spamd://host[:port]` (port 783 when left out)."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme != "spamd" or not parts.hostname or port == -1 or parts.path not in ("", "/"):
            raise ValueError("must look like spamd://127.0.0.1:783")
        return cls(parts.hostname, port or DEFAULT_PORT)


async def report(address: SpamdAddress, message: bytes, timeout: float) -> Report:
    """Scores one message (RFC 5322 bytes); raises SpamdError when spamd is unreachable or its answer
    unreadable."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address.host, address.port)
            try:
                writer.write(b"REPORT SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % len(message) + message)
                await writer.drain()
                writer.write_eof()
                answer = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise SpamdError(
            f"spamd at {address.host}:{address.port} did not answer: {exc or 'timed out'}"
        ) from None
    return parse_report(answer)


def parse_report(answer: bytes) -> Report:
    head, _, body = answer.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("latin-1").split("\n")
    status = _RESPONSE_LINE.match(lines[0])
    if status is None:
        raise SpamdError(f"spamd answered {lines[0][:80]!r}, not a SPAMD/1.x response")
    if status.group(2) != "0":
        raise SpamdError(f"spamd refused the message: {status.group(2)} {status.group(3)}")
    verdict = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "spam":
            verdict = _SPAM_HEADER.match(value.strip())
    if verdict is None:
        raise SpamdError("spamd's answer has no Spam: header")
    return Report(
        score=float(verdict.group(2)),
        threshold=float(verdict.group(3)),
        is_spam=verdict.group(1).lower() in ("true", "yes"),
        rules=_rules(body.decode("utf-8", "replace")),
    )


def _rules(text: str) -> list[Rule]:
    """The rows of the report's table, which starts after its dashed rule line; a long description continues
    on lines indented past the name column."""
    rules: list[Rule] = []
    in_table = False
    for line in text.split("\n"):
        if not in_table:
            in_table = line.startswith("----")
            continue
        row = _RULE_ROW.match(line)
        if row:
            rules.append(Rule(row.group(2), float(row.group(1)), row.group(3).strip()))
        elif rules and (more := _CONTINUATION.match(line)):
            last = rules[-1]
            rules[-1] = Rule(last.name, last.score, f"{last.description} {more.group(1).strip()}")
        elif line.strip():
            break
    return rules
