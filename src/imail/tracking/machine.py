"""Telling machine opens and clicks from human ones. Flagged, not dropped, so analytics can count humans.

How an open (a fetch of the pixel) is judged, first rule that applies:

1. within `PREFETCH_WINDOW` of sending: machine (a filter or scanner fetching at delivery; no one reads that
fast);
2. a mailbox provider's image proxy (Gmail's GoogleImageProxy via ggpht.com, Yahoo's YahooMailProxy, Outlook's
and
   Microsoft's): human. These proxies fetch when the recipient opens the email, hiding only the reader's
   address;
3. Apple Mail Privacy Protection (Apple's network 17.0.0.0/8, or its bare `Mozilla/5.0` agent): machine, since
it
   prefetches every image at delivery whether the email is read or not;
4. a security scanner or an automated client (Barracuda, Mimecast, Proofpoint…, curl, python-requests,
headless
   browsers, anything calling itself a bot, crawler or spider), or no user agent at all: machine;
5. anything else (a mail client loading images itself): human.

Clicks: machine when they come within `scanner_window` of sending, from a scanner or automated client, or with
no user agent (link checkers follow every link seconds after delivery).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

# Mailbox providers' image proxies: they fetch on open, on the reader's behalf.
PROVIDER_PROXY_AGENTS = (
    "googleimageproxy",
    "ggpht.com",
    "yahoomailproxy",
    "outlook-ios-imageproxy",
    "outlookimageproxy",
    "owaimageproxy",
    "microsoft outlook",
    "ms-office",
    "microsoft office",
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
# Apple Mail Privacy Protection fetches images from Apple's own network, with a bare agent.
APPLE_PROXY_NETWORK = ipaddress.ip_network("17.0.0.0/8")
APPLE_PROXY_AGENT = "mozilla/5.0"
PREFETCH_WINDOW = timedelta(seconds=5)
MACHINE_OPENS = frozenset({"prefetch", "apple_privacy", "scanner"})


def _within(sent_at: datetime | None, now: datetime, window: timedelta) -> bool:
    return sent_at is not None and timedelta(0) <= now - sent_at <= window


def _from_apple(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip) in APPLE_PROXY_NETWORK
    except ValueError:
        return False


def judge_open(user_agent: str, ip: str | None, sent_at: datetime | None, now: datetime) -> str:
    """Which rule (see the module's docstring) an open falls under: `prefetch`, `provider_proxy`,
    `apple_privacy`, `scanner` or `client`."""
    agent = user_agent.strip().lower()
    if _within(sent_at, now, PREFETCH_WINDOW):
        return "prefetch"
    if any(p in agent for p in PROVIDER_PROXY_AGENTS):
        return "provider_proxy"
    if _from_apple(ip) or agent == APPLE_PROXY_AGENT:
        return "apple_privacy"
    if not agent or any(p in agent for p in SCANNER_AGENTS):
        return "scanner"
    return "client"


def open_is_machine(user_agent: str, ip: str | None, sent_at: datetime | None, now: datetime) -> bool:
    return judge_open(user_agent, ip, sent_at, now) in MACHINE_OPENS


def click_is_machine(
    user_agent: str, sent_at: datetime | None, now: datetime, scanner_window: timedelta
) -> bool:
    agent = user_agent.lower()
    return not agent or any(p in agent for p in SCANNER_AGENTS) or _within(sent_at, now, scanner_window)
