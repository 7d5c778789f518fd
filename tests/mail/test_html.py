"""html_to_text: the regular-expression tokenizer for plain markup makes the stdlib parser's handler calls."""

from __future__ import annotations

import random

import pytest

from imail.mail.html import _extract_simple_markup, _TextExtractor, html_to_text

TAGS = [
    "p",
    "div",
    "br",
    "a",
    "b",
    "li",
    "ul",
    "h1",
    "span",
    "table",
    "tr",
    "td",
    "P",
    "A",
    "Br",
    "img",
    "title",
]
TEXTS = [
    "Hi Ana,",
    " see ",
    "\n  this\t",
    "&amp;",
    "&lt;b&gt;",
    "a > b",
    "&#39;quoted&#x27;",
    "caf&eacute;",
    "https://acme.io",
    "  ",
    "{{first_name}}",
    "&notanentity;",
    "x&y",
    "—ünïcode",
]
VALUES = [
    "https://acme.io/a?x=1&amp;y=2",
    "https://t.acme.test/t/c/abc",
    "mailto:a@b.c",
    "",
    "it's",
    'say "hi"',
    "a > b",
    "https://acme.io",
]


def _attributes(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 3)):
        name = rng.choice(["href", "HREF", "class", "style", "data-x", "target", "disabled"])
        value = rng.choice(VALUES)
        quote = rng.choice(['"', "'", None])
        if quote is None:
            parts.append(f"{rng.choice([' ', '  ', chr(10)])}{name}")
        elif quote in value:
            continue
        else:
            parts.append(f"{rng.choice([' ', chr(10)])}{name}{rng.choice(['=', ' = '])}{quote}{value}{quote}")
    return "".join(parts)


def _markup(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 25)):
        kind = rng.random()
        tag = rng.choice(TAGS)
        if kind < 0.35:
            out.append(rng.choice(TEXTS))
        elif kind < 0.65:
            out.append(f"<{tag}{_attributes(rng)}{rng.choice(['', ' ', '/', ' /'])}>")
        else:
            out.append(f"</{tag}{rng.choice(['', ' '])}>")
    return "".join(out)


def _with_stdlib_parser(body: str) -> list[str]:
    parser = _TextExtractor()
    parser.feed(body)
    parser.close()
    return parser.parts


@pytest.mark.parametrize("seed", range(40))
def test_plain_markup_gives_what_the_stdlib_parser_gives(seed):
    rng = random.Random(seed)
    for _ in range(100):
        body = _markup(rng)
        fast = _TextExtractor()
        assert _extract_simple_markup(body, fast), body
        assert fast.parts == _with_stdlib_parser(body), body


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("<p>a<!-- note --></p>", "a"),
        ("<!DOCTYPE html><p>x</p>", "x"),
        ("<p>1 < 2</p>", "1 < 2"),
        ("<style>p{}</style><p>x</p>", "x"),
        ("<script>if (a<b) {}</script>ok", "ok"),
        ("<a href=https://acme.io/x>here</a>", "here (https://acme.io/x)"),
        ("<o:p>x</o:p>", "x"),
        ("<p>unclosed <b", "unclosed <b"),
        ("<?xml version='1.0'?><p>x</p>", "x"),
    ],
)
def test_other_markup_goes_to_the_stdlib_parser(body, text):
    assert not _extract_simple_markup(body, _TextExtractor())
    assert html_to_text(body) == text


def test_a_rendered_campaign_email_takes_the_fast_path():
    body = (
        '<p>Hello Ana at Globex, see <a href="https://t.acme.test/t/c/x?i=0&amp;s=1">the demo</a>.</p>'
        "<br><br><p>Jo<br>Acme &amp; Co</p>"
    )
    fast = _TextExtractor()
    assert _extract_simple_markup(body, fast)
    assert (
        html_to_text(body)
        == "Hello Ana at Globex, see the demo (https://t.acme.test/t/c/x?i=0&s=1).\n\nJo\nAcme & Co"
    )
