"""Endpoint URL rules: http(s), no credentials, and no private or loopback targets (unless the operator
allows them), so the server cannot be turned against its own network. Checked on create and on each send."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from imail.errors import InvalidField
from imail.kit.network import is_local_name, literal_ip, refused, resolve

MAX_URL_LENGTH = 2048


def _is_public(address: str) -> bool:
    """The one address policy (imail.kit.network), IPv4 inside IPv6 unwrapped, with no private exception."""
    return refused(address, allow_private=False) is None


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
    if is_local_name(host):
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


class PinnedAddressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, except that it resolves the host itself and dials the very address it
    checked. A check before the request is not enough on its own: the HTTP client would resolve the name
    again, and a name served with a zero TTL can answer a public address to the check and 127.0.0.1 to the
    connection (DNS rebinding). TLS still verifies the certificate against the host name (httpcore passes it
    as the SNI name)."""

    def __init__(self, allowed: Callable[[str], bool] = _is_public):
        self.allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = [literal] if (literal := literal_ip(host)) else await resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}")
        if not all(self.allowed(address) for address in addresses):
            raise httpcore.ConnectError(f"blocked: {host} resolves to a private or loopback address")
        return await self._inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_client(allowed: Callable[[str], bool] = _is_public) -> httpx.AsyncClient:
    """An HTTP client that only ever connects to addresses `allowed` accepts, checked at connect time."""
    transport = httpx.AsyncHTTPTransport()
    # httpx has no parameter for the network backend: its connection pool reads this attribute for each new
    # connection (tests/webhooks/test_address_pinning.py fails if a release changes that).
    transport._pool._network_backend = PinnedAddressBackend(allowed)
    return httpx.AsyncClient(transport=transport, follow_redirects=False)


class AddressGuard:
    """The same rule before each send (a name may point elsewhere since create), cached per host briefly, with
    the client that enforces it again on each new connection (see PinnedAddressBackend)."""

    def __init__(self, ttl: float = 60.0):
        self.ttl = ttl
        self._cache: dict[tuple[str, int], tuple[float, str | None]] = {}
        self.http = pinned_client()

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
        if is_local_name(key[0]):
            reason = "blocked: the host is a local name"
        else:
            addresses = await resolve(host, port)
            if not addresses:
                reason = f"could not resolve {host}"
            elif any(not _is_public(a) for a in addresses):
                reason = f"blocked: {host} resolves to a private or loopback address"
        self._cache[key] = (now + self.ttl, reason)
        return reason
