"""Telling machine opens and clicks from human ones: image proxies that fetch every pixel, and link scanners
that follow every link seconds after delivery. Flagged, not dropped, so analytics can count humans."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

IMAGE_PROXY_AGENTS = (
    "googleimageproxy",
    "ggpht.com",
    "yahoomailproxy",
    "yahoo! slurp",
    "outlook-ios-imageproxy",
)
SCANNER_AGENTS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "safelinks",
    "forcepoint",
    "trendmicro",
    "symantec",
    "messagelabs",
    "fireeye",
    "sophos",
    "python-requests",
    "python-httpx",
    "curl/",
    "wget/",
    "go-http-client",
    "headlesschrome",
    "phantomjs",
    "bot",
    "crawler",
    "spider",
    "preview",
    "scanner",
    "linkcheck",
)
# Apple Mail Privacy Protection fetches images from Apple's own network.
APPLE_PROXY_NETWORK = ipaddress.ip_network("17.0.0.0/8")
PREFETCH_WINDOW = timedelta(seconds=2)


def _within(sent_at: datetime | None, now: datetime, window: timedelta) -> bool:
    return sent_at is not None and timedelta(0) <= now - sent_at <= window


def _from_apple(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip) in APPLE_PROXY_NETWORK
    except ValueError:
        return False


def open_is_machine(user_agent: str, ip: str | None, sent_at: datetime | None, now: datetime) -> bool:
    agent = user_agent.lower()
    return (
        any(p in agent for p in IMAGE_PROXY_AGENTS)
        or _from_apple(ip)
        or _within(sent_at, now, PREFETCH_WINDOW)
    )


def click_is_machine(
    user_agent: str, sent_at: datetime | None, now: datetime, scanner_window: timedelta
) -> bool:
    agent = user_agent.lower()
    return not agent or any(p in agent for p in SCANNER_AGENTS) or _within(sent_at, now, scanner_window)
