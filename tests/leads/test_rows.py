"""Pure lead helpers: email syntax (fast path = email-validator), zone inference, batch ids, row checks."""

from __future__ import annotations

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from imail.leads import timezones
from imail.leads.emails import InvalidEmail, normalize_domain, normalize_email
from imail.leads.rows import RowInvalid, prepare
from imail.leads.zones import COUNTRY_ZONES
from imail.models.lead import TimezoneSource

CORPUS = [
    "ana@example.com",
    "Ana.Maria@Example.COM",
    "a+tag@sub.example.co.uk",
    "x@a-b.io",
    "o'neil@example.ie",
    "first.last@xn--bcher-kva.example",
    "user@mail.example.travel",
    "a@b.c",
    "a@b.co",
    "a@123.com",
    "!#$%&'*+/=?^_`{|}~-@example.org",
    ("a" * 64) + "@example.com",
    ("a" * 65) + "@example.com",
    "a@" + ".".join(["b" * 63] * 4) + ".com",
    "ana@localhost",
    "ana@example.local",
    "ana@example.test",
    "ana@example",
    "ana@-example.com",
    "ana@example-.com",
    "ana@exa_mple.com",
    "ana@@example.com",
    ".ana@example.com",
    "ana.@example.com",
    "an..a@example.com",
    "ana@example..com",
    "ana example@x.com",
    '"ana"@example.com',
    "ana@[127.0.0.1]",
    "jörg@example.de",
    "ana@bücher.de",
    "ana@example.com.",
    "",
    "@example.com",
    "ana@",
    "ana",
    "ana@1.2.3.4",
    "ANA@EXAMPLE.COM ",
]


def reference(value: str) -> str | None:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@pytest.mark.parametrize("value", CORPUS)
def test_fast_path_agrees_with_email_validator(value):
    expected = reference(value)
    try:
        got = normalize_email(value)
    except InvalidEmail:
        got = None
    assert got == expected


def test_plain_host_shortcut_agrees_with_email_validator_on_generated_domains():
    rng = random.Random(5)
    alphabet = "ab-9.xnZ"
    domains = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(4000)]
    domains += [
        "a.b" + "c" * 61 + "d",
        "a." + "b" * 64,
        "example.-com",
        "ex--ample.com",
        "xn--bcher-kva.de",
        "a.local",
        "b.onion",
        "c.arpa",
        "a." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 61,
    ]
    for domain in domains:
        assert _answer(lambda domain=domain: normalize_email(f"ana@{domain}")) == reference(
            f"ana@{domain}"
        ), domain


def _answer(call):
    try:
        return call()
    except InvalidEmail:
        return None


def test_domains():
    assert normalize_domain("@Example.COM") == "example.com"
    for bad in ("ana@example.com", "", "exa mple.com", "localhost"):
        with pytest.raises(InvalidEmail):
            normalize_domain(bad)


def test_zone_inference_order():
    assert timezones.resolve("Asia/Tokyo", "FR", "+14155550123", "Europe/Paris") == (
        "Asia/Tokyo",
        TimezoneSource.explicit,
    )
    assert timezones.resolve(None, "FR", "+14155550123", None) == (
        "America/Los_Angeles",
        TimezoneSource.phone,
    )
    assert timezones.resolve(None, "FR", None, "Asia/Tokyo") == ("Europe/Paris", TimezoneSource.country)
    # A number whose prefix spans zones loses to an explicit country, else gives its country's main zone.
    assert timezones.resolve(None, "IE", "+447911123456", None) == ("Europe/Dublin", TimezoneSource.country)
    assert timezones.resolve(None, None, "+447911123456", None) == ("Europe/London", TimezoneSource.phone)
    assert timezones.resolve(None, None, "+79161234567", None) == ("Europe/Moscow", TimezoneSource.phone)
    assert timezones.resolve(None, None, "not a phone", "Asia/Tokyo") == (
        "Asia/Tokyo",
        TimezoneSource.campaign,
    )
    assert timezones.resolve(None, None, None, "lead") == ("UTC", TimezoneSource.default)
    # A national number is read with the country's dialling rules.
    assert timezones.resolve(None, "US", "(212) 555-0123", None) == ("America/New_York", TimezoneSource.phone)


def test_every_country_zone_exists():
    assert len(COUNTRY_ZONES) > 240
    assert all(timezones.is_zone(zone) for zone in COUNTRY_ZONES.values())
    assert timezones.canonical_zone("europe/paris") == "Europe/Paris"
    assert timezones.canonical_zone("Mars/Olympus") is None


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"email": "nope"}, "email"),
        ({}, "email"),
        ({"email": "a@x.com", "country": "XX"}, "country"),
        ({"email": "a@x.com", "country": "France"}, "country"),
        ({"email": "a@x.com", "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "a@x.com", "custom_variables": {"bad key": "x"}}, "custom_variables.bad key"),
        ({"email": "a@x.com", "custom_variables": {"k": {"nested": 1}}}, "custom_variables.k"),
        ({"email": "a@x.com", "first_name": "x" * 201}, "first_name"),
        ({"email": "a@x.com", "frist_name": "Ana"}, "frist_name"),
        ("a@x.com", None),
    ],
)
def test_row_problems_name_the_field(row, field):
    with pytest.raises(RowInvalid) as info:
        prepare(row, None)
    assert info.value.field == field
    assert info.value.reason


def test_prepare_normalizes():
    p = prepare(
        {
            "email": " Ana@Example.COM ",
            "first_name": " Ana ",
            "country": "fr",
            "timezone": "",
            "custom_variables": {"n": 3},
        },
        None,
    )
    assert (p.email, p.first_name, p.country, p.timezone, p.timezone_source) == (
        "ana@example.com",
        "Ana",
        "FR",
        "Europe/Paris",
        "country",
    )
    assert p.custom_variables == {"n": 3}
