"""Checking and normalizing one lead's fields (pure): shared by single create, bulk and CSV import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from imail.leads import timezones
from imail.leads.emails import InvalidEmail, normalize_email
from imail.leads.schemas import LeadInput
from imail.leads.tags import TagInvalid, normalize_tags
from imail.mail.templates import NAME

MAX_CUSTOM_VARIABLES = 50
MAX_CUSTOM_VALUE = 1000
OPTIONAL_TEXT = ("first_name", "last_name", "company", "title", "phone")
_validate_row = LeadInput.__pydantic_validator__.validate_python


class RowInvalid(ValueError):
    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(slots=True)
class Prepared:
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    phone: str | None
    country: str | None
    timezone: str
    timezone_source: str
    custom_variables: dict[str, Any]
    tags: list[str]


def _loc(loc: tuple) -> str | None:
    if not loc:
        return None
    path = str(loc[0])
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def pydantic_problem(exc: ValidationError) -> RowInvalid:
    first = exc.errors()[0]
    field = _loc(tuple(first.get("loc", ())))
    if first.get("type") == "missing":
        return RowInvalid(field, f"{field} is required")
    if first.get("type") == "extra_forbidden":
        return RowInvalid(field, f"{field} is not a lead field (fields: {', '.join(LeadInput.model_fields)})")
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    return RowInvalid(field, f"{field}: {message}" if field else message)


def check_timezone(value: str, field: str = "timezone") -> str:
    canonical = timezones.canonical_zone(value)
    if canonical is None:
        raise RowInvalid(
            field, f"{field}: unknown time zone {value!r}; use an IANA name like America/New_York"
        )
    return canonical


def check_country(value: str, field: str = "country") -> str:
    code = value.upper()
    if not timezones.is_country(code):
        raise RowInvalid(
            field, f"{field}: {value!r} is not an ISO 3166-1 alpha-2 country code (like US, FR, DE)"
        )
    return code


def check_custom_variables(values: Mapping[str, Any], field: str = "custom_variables") -> dict[str, Any]:
    if len(values) > MAX_CUSTOM_VARIABLES:
        raise RowInvalid(field, f"{field}: at most {MAX_CUSTOM_VARIABLES} variables; got {len(values)}")
    for key, value in values.items():
        if not NAME.match(key):
            raise RowInvalid(
                f"{field}.{key}", f"{field}: {key!r} is not a variable name; use letters, digits and _"
            )
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise RowInvalid(f"{field}.{key}", f"{field}.{key}: must be a string, number, boolean or null")
        if isinstance(value, str) and len(value) > MAX_CUSTOM_VALUE:
            raise RowInvalid(f"{field}.{key}", f"{field}.{key}: at most {MAX_CUSTOM_VALUE} characters")
    return dict(values)


def prepare(row: Any, campaign_zone: str | None) -> Prepared:
    """One lead's fields checked and normalized, its zone resolved; RowInvalid names the field at fault."""
    if not isinstance(row, Mapping):
        raise RowInvalid(None, "each lead must be a JSON object")
    try:
        lead = _validate_row(row)
    except ValidationError as exc:
        raise pydantic_problem(exc) from None
    return from_fields(
        lead.email,
        lead.first_name,
        lead.last_name,
        lead.company,
        lead.title,
        lead.phone,
        lead.country,
        lead.timezone,
        lead.custom_variables,
        campaign_zone,
        lead.tags,
    )


def from_fields(
    email: str,
    first_name: str | None,
    last_name: str | None,
    company: str | None,
    title: str | None,
    phone: str | None,
    country: str | None,
    timezone: str | None,
    custom_variables: Mapping[str, Any],
    campaign_zone: str | None,
    tags: Any = (),
) -> Prepared:
    if not email:
        raise RowInvalid("email", "email is required")
    try:
        address = normalize_email(email)
    except InvalidEmail as exc:
        raise RowInvalid("email", f"email: {exc}") from None
    country = check_country(country) if country else None
    zone = check_timezone(timezone) if timezone else None
    phone = phone or None
    zone, source = timezones.resolve(zone, country, phone, campaign_zone)
    return Prepared(
        email=address,
        first_name=first_name or None,
        last_name=last_name or None,
        company=company or None,
        title=title or None,
        phone=phone,
        country=country,
        timezone=zone,
        timezone_source=source.value,
        custom_variables=check_custom_variables(custom_variables) if custom_variables else {},
        tags=check_tags(tags),
    )


def check_tags(tags: Any, field: str = "tags") -> list[str]:
    try:
        return normalize_tags(tags, field)
    except TagInvalid as problem:
        raise RowInvalid(problem.field, problem.reason) from None
