"""The template language, pure: variables, fallbacks, spintax, errors with positions, plain-text
derivation."""

from __future__ import annotations

import random

import pytest

from imail.mail import templates
from imail.mail.html import html_to_text
from imail.mail.templates import MissingVariable, TemplateError, check, parse, render

KNOWN = frozenset(templates.BUILTIN_VARIABLES) | {"pain_point"}


def test_variables_and_fallbacks():
    values = {"first_name": "Ana", "company": "Acme", "pain_point": "churn"}
    assert render("Hi {{first_name}} at {{ company }}: {{pain_point}}", values) == "Hi Ana at Acme: churn"
    assert render("Hi {{first_name|there}}", {}) == "Hi there"
    assert render("Hi {{first_name|there}}", {"first_name": "   "}) == "Hi there"  # blank counts as missing
    assert render("Hi {{first_name|}}!", {}) == "Hi !"  # an explicit empty fallback
    assert render("{{count}} seats", {"count": 12}) == "12 seats"


def test_missing_variable_without_fallback_raises_or_is_collected():
    with pytest.raises(MissingVariable) as info:
        render("Hi {{first_name}}", {})
    assert info.value.name == "first_name" and info.value.position == 4
    missing: list[str] = []
    assert render("{{a}} {{b|x}} {{a}}", {}, missing=missing) == " x "
    assert missing == ["a"]


def test_spintax_picks_every_option_and_is_stable_for_a_seed():
    seen = {render("{Hi|Hello|Hey} there", {}, random.Random(seed)) for seed in range(60)}
    assert seen == {"Hi there", "Hello there", "Hey there"}
    assert render("{a|b|c}{1|2|3}", {}, random.Random(7)) == render("{a|b|c}{1|2|3}", {}, random.Random(7))


def test_spintax_nests_and_holds_variables():
    outputs = {
        render("{Hi {{first_name}}|{Hello|Hey} there}", {"first_name": "Ana"}, random.Random(s))
        for s in range(80)
    }
    assert outputs == {"Hi Ana", "Hello there", "Hey there"}


def test_braces_without_a_pipe_stay_literal_so_css_survives():
    body = "<style>p{margin:0} @media (x){a{color:red}}</style>{{first_name|x}}"
    assert render(body, {}) == "<style>p{margin:0} @media (x){a{color:red}}</style>x"


def test_escapes():
    assert render(r"\{not spin\} a\|b {x\|y|z}", {}, random.Random(1)) in {
        "{not spin} a|b x|y",
        "{not spin} a|b z",
    }


def test_html_escaping_applies_to_values_only():
    out = render("<p>{{company}} {{title|<i>boss</i>}}</p>", {"company": "<b>AT&T</b>"}, escape_html=True)
    assert out == "<p>&lt;b&gt;AT&amp;T&lt;/b&gt; <i>boss</i></p>"


@pytest.mark.parametrize(
    ("source", "problem", "position", "line", "column"),
    [
        ("Hi {Ana|Bob", "`{` is never closed", 4, 1, 4),
        ("Hi Ana}", "`}` closes nothing", 7, 1, 7),
        ("line one\nHi {{first_name", "`{{` is never closed", 13, 2, 4),
        ("Hi {{first name}}", "invalid variable name `first name`", 4, 1, 4),
        ("Hi {{}}", "invalid variable name `(empty)`", 4, 1, 4),
        ("{a|{b|c}", "`{` is never closed", 1, 1, 1),
        ("{{a{b}}", "`{` inside a `{{…}}` variable", 4, 1, 4),
    ],
)
def test_parse_errors_name_the_position(source, problem, position, line, column):
    with pytest.raises(TemplateError) as info:
        parse(source)
    err = info.value
    assert problem in err.problem
    assert (err.position, err.line, err.column) == (position, line, column)
    assert f"at position {position} (line {line}, column {column})" in str(err)


def test_check_refuses_unknown_variables_without_fallback():
    check("Hi {{first_name}}, about {{pain_point}} {{city|your city}}", KNOWN)
    with pytest.raises(TemplateError) as info:
        check("Hello\n  {{fist_name}}", KNOWN)
    assert "unknown variable {{fist_name}}" in str(info.value)
    assert (info.value.position, info.value.line, info.value.column) == (9, 2, 3)
    with pytest.raises(TemplateError):
        check("{Hi {{frist_name}}|Hello}", KNOWN)  # inside spintax too


def test_lead_values_builtins_win_over_custom_variables():
    from types import SimpleNamespace

    lead = SimpleNamespace(
        email="a@x.com",
        first_name="Ana",
        last_name=None,
        company="Acme",
        title=None,
        custom_variables={"first_name": "Custom", "city": "Lyon"},
    )
    values = templates.lead_values(lead)
    assert values["first_name"] == "Ana" and values["city"] == "Lyon" and values["last_name"] is None


def test_html_to_text():
    html = (
        '<html><head><style>p{color:red}</style></head><body><p>Hi&nbsp;Ana,</p><p>See <a href="https://x.io/a">'
        "this</a>.<br>Thanks</p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert html_to_text(html) == "Hi Ana,\n\nSee this (https://x.io/a).\nThanks\n\n- one\n- two"
    assert html_to_text("plain {{first_name}}") == "plain {{first_name}}"


def test_stable_seed():
    assert templates.stable_seed("lead_1", 1, "A") == templates.stable_seed("lead_1", 1, "A")
    assert templates.stable_seed("lead_1", 1, "A") != templates.stable_seed("lead_1", 2, "A")
