"""Endpoint URL rules: http(s), no credentials, and no private or loopback targets (unless the operator
allows them), so the server cannot be turned against its own network. Checked on create and on each send."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

from imail.errors import InvalidField

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT = 3.0
# Names that only ever mean "this machine" or "this site's network".
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def parse(url: str) -> tuple[str, int]:
    """Check the URL's shape; return its host and port. Raises InvalidField naming `url`."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidField(f"url must be at most {MAX_URL_LENGTH} characters", "url")
    if not url.strip() or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidField("url must be an absolute https:// or http:// URL without spaces", "url")
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise InvalidField(
            "url is not a valid URL; expected e.g. https://example.com/hooks/imail", "url"
        ) from None
    if parts.scheme not in ("https", "http"):
        raise InvalidField("url must start with https:// or http://", "url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidField(
            "url must not contain credentials (user:password@); "
            "verify requests with the signing secret instead",
            "url",
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidField("url has no host; expected e.g. https://example.com/hooks/imail", "url")
    return host, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to (empty when it does not resolve in time)."""
    literal = _literal_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
    except (TimeoutError, OSError, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def _private_message(host: str, address: str) -> str:
    shown = host if host == address else f"{host} ({address})"
    return (
        f"url points to a private, loopback or link-local address: {shown}. Webhooks must target a public "
        f"host (operators delivering inside their own network can set IMAIL_WEBHOOKS_ALLOW_PRIVATE=1)"
    )


async def validate(url: str, allow_private: bool) -> str:
    """The URL, checked for create: raises InvalidField(field='url') with a message saying what to fix."""
    host, port = parse(url)
    if allow_private:
        return url
    lowered = host.lower()
    if lowered == "localhost" or lowered.endswith(LOCAL_SUFFIXES):
        raise InvalidField(_private_message(host, host), "url")
    addresses = await resolve(host, port)
    if not addresses:
        raise InvalidField(
            f"url's host {host} does not resolve; check the name or use a public IP address", "url"
        )
    for address in addresses:
        if not _is_public(address):
            raise InvalidField(_private_message(host, address), "url")
    return url


class AddressGuard:
    """The same rule before each send (a name may point elsewhere since create), cached per host briefly."""

    def __init__(self, ttl: float = 60.0):
        self.ttl = ttl
        self._cache: dict[tuple[str, int], tuple[float, str | None]] = {}

    async def blocked(self, url: str) -> str | None:
        """Why this URL must not be contacted now, or None when it may be."""
        try:
            host, port = parse(url)
        except InvalidField as exc:
            return exc.message
        key = (host.lower(), port)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        reason: str | None = None
        if key[0] == "localhost" or key[0].endswith(LOCAL_SUFFIXES):
            reason = "blocked: the host is a local name"
        else:
            addresses = await resolve(host, port)
            if not addresses:
                reason = f"could not resolve {host}"
            elif any(not _is_public(a) for a in addresses):
                reason = f"blocked: {host} resolves to a private or loopback address"
        self._cache[key] = (now + self.ttl, reason)
        return reason
