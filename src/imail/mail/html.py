"""HTML ↔ plain text: the text/plain part of a campaign email (and its preview), the text of an HTML reply, a
plain signature as HTML. Stdlib parser, no dependency."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_SPACES = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    BLOCKS = frozenset(
        {"p", "div", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "table"}
    )
    SKIP = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str | None, int]] = []  # open anchors: href, and where their text starts
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            # A link whose text is its address already reads fine: "https://acme.io", not twice.
            if href and href.startswith(("http://", "https://")) and href not in "".join(self.parts[start:]):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(_SPACES.sub(" ", data))


# The markup a rendered campaign email is made of: text, and start / end tags with quoted attributes. Anything
# else (comments, declarations, script or style, unquoted attributes, a "<" that starts no such tag) is left
# to the stdlib parser.
_TAG = re.compile(
    r"""<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s/>"'=<]+(?:\s*=\s*(?:"[^"]*"|'[^']*'))?)*)\s*(/?)>|</([a-zA-Z][a-zA-Z0-9]*)\s*>"""
)
_ATTRIBUTE = re.compile(r"""\s+([^\s/>"'=<]+)(\s*=\s*(?:"([^"]*)"|'([^']*)'))?""")
_RAW_TEXT = frozenset({"script", "style"})


def _extract_simple_markup(body: str, extractor: _TextExtractor) -> bool:
    """Makes the handler calls the stdlib parser would make, if `body` is plain tags and text; False when it
    holds anything else (the extractor may then hold part of it: start again with a new one)."""
    position = 0
    for match in _TAG.finditer(body):
        text = body[position : match.start()]
        if "<" in text:
            return False
        if text:
            extractor.handle_data(html.unescape(text))
        position = match.end()
        name, attributes, self_closing, closing = match.groups()
        if closing:
            extractor.handle_endtag(closing.lower())
            continue
        name = name.lower()
        if name in _RAW_TEXT:
            return False
        # Of all attributes only a link's reach the text (its href): the others are not worth parsing.
        attrs = (
            [
                (
                    attribute.group(1).lower(),
                    None
                    if attribute.group(2) is None
                    else html.unescape(attribute.group(3) or attribute.group(4) or ""),
                )
                for attribute in _ATTRIBUTE.finditer(attributes)
            ]
            if name == "a" and attributes
            else []
        )
        if self_closing:
            extractor.handle_startendtag(name, attrs)
        else:
            extractor.handle_starttag(name, attrs)
    rest = body[position:]
    if "<" in rest:
        return False
    if rest:
        extractor.handle_data(html.unescape(rest))
    return True


def html_to_text(body: str) -> str:
    """The plain-text part derived from an HTML body: block breaks kept, links as `text (url)`."""
    # Every email sent comes through here: plain markup is tokenized with two regular expressions, several
    # times cheaper than the stdlib parser, into the same handler calls (tests/mail/test_html.py compares the
    # two).
    parser = _TextExtractor()
    if not _extract_simple_markup(body, parser):
        parser = _TextExtractor()
        parser.feed(body)
        parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
