"""A lead's time zone: the one it names, else inferred from its phone or country, else the campaign's window
zone, else UTC. Pure functions; the phone prefix → zone data is Google's libphonenumber (`phonenumbers`)."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import timezone as phone_zones

from imail.leads.zones import COUNTRY_ZONES
from imail.models.lead import TimezoneSource


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def is_zone(name: str) -> bool:
    return name in known_zones()


@lru_cache(maxsize=1)
def _by_lower() -> dict[str, str]:
    return {zone.lower(): zone for zone in known_zones()}


def canonical_zone(name: str) -> str | None:
    """The IANA name as the tz database spells it (`europe/paris` → `Europe/Paris`), or None if unknown."""
    return name if name in known_zones() else _by_lower().get(name.lower())


def is_country(code: str) -> bool:
    return code in COUNTRY_ZONES


def phone_zone(phone: str, country: str | None = None) -> tuple[str | None, bool]:
    """(zone, exact): exact when the number's prefix maps to one zone; else the calling code's main country's
    zone (or the first candidate), or (None, False) when the number cannot be read."""
    try:
        number = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        return None, False
    zones = [z for z in phone_zones.time_zones_for_number(number) if z != phone_zones.UNKNOWN_TIMEZONE]
    if len(zones) == 1:
        return zones[0], True
    main = COUNTRY_ZONES.get(phonenumbers.region_code_for_country_code(number.country_code or 0))
    if main and (main in zones or not zones):
        return main, False
    return (zones[0], False) if zones else (None, False)


def resolve(
    timezone: str | None, country: str | None, phone: str | None, campaign_zone: str | None
) -> tuple[str, TimezoneSource]:
    """The zone to store and where it came from. `timezone` and `country` are already validated."""
    if timezone:
        return timezone, TimezoneSource.explicit
    by_phone, exact = phone_zone(phone, country) if phone else (None, False)
    if by_phone and exact:
        return by_phone, TimezoneSource.phone
    if country:
        return COUNTRY_ZONES[country], TimezoneSource.country
    if by_phone:
        return by_phone, TimezoneSource.phone
    return campaign_fallback(campaign_zone)


def campaign_fallback(campaign_zone: str | None) -> tuple[str, TimezoneSource]:
    """The zone of a lead that gave nothing to infer from: its campaign's window zone, else UTC."""
    if campaign_zone and campaign_zone != "lead":
        return campaign_zone, TimezoneSource.campaign
    return "UTC", TimezoneSource.default
