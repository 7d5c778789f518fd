"""Requests by `Host`: on a workspace's tracking domain only the tracking routes answer (`/t/…`, `/u/…`), and
only for that workspace's emails; the API and every other page are 404 there. Any other host
(IMAIL_PUBLIC_URL's, a load balancer's) serves everything, for every tenant, as before (emails sent before a
domain was set link there).

Who owns a host is read from the database once per host and kept for HOST_TTL (a new or removed domain is seen
by every process within that); the process that changes a domain forgets what it knew at once."""

from __future__ import annotations

import time
from ipaddress import ip_address

import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from imail.errors import NotFound
from imail.tracking_domains.service import owner_of

log = structlog.get_logger("imail.tracking_domains")

TRACKING_PREFIXES = ("/t/", "/u/")
HOST_TTL = 30.0
FAILED_LOOKUP_TTL = 5.0
MAX_HOSTS = 10_000  # any client can send any Host: the cache must not grow without bound
OWNER_KEY = "tracking_host_owner"  # request.state: the workspace whose tracking domain the request came to


def request_host(scope: Scope) -> str:
    host = Headers(scope=scope).get("host", "").strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


def could_be_domain(host: str) -> bool:
    """Whether `host` may be a tracking domain at all (a dotted name, not an address): others skip the
    lookup."""
    if "." not in host:
        return False
    try:
        ip_address(host)
    except ValueError:
        return True
    return False


class HostOwners:
    """host → (owning workspace or None, when the answer expires)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str | None, float]] = {}

    def get(self, host: str) -> tuple[bool, str | None]:
        entry = self._entries.get(host)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def put(self, host: str, owner: str | None, ttl: float = HOST_TTL) -> None:
        if len(self._entries) >= MAX_HOSTS:
            self._entries.clear()
        self._entries[host] = (owner, time.monotonic() + ttl)

    def clear(self) -> None:
        self._entries.clear()

    def forget(self, *hosts: str | None) -> None:
        for host in hosts:
            if host:
                self._entries.pop(host, None)


class TrackingHostGate:
    def __init__(self, app: ASGIApp, public: str):
        self.app = app
        self.public = public

    async def _owner(self, scope: Scope, host: str) -> str | None:
        state = scope["app"].state
        owners: HostOwners = state.tracking_hosts
        known, owner = owners.get(host)
        if known:
            return owner
        try:
            async with state.database.read() as session:
                owner = await owner_of(session, host)
        except Exception as exc:  # noqa: BLE001 - the database is down: the routes' own reads answer 503
            # Served as any host for a few seconds rather than every request waiting on the database first:
            # without it no route answers anything but 503 (the API needs it for keys, tracking for tokens).
            log.debug("tracking host lookup failed", host=host, error=str(exc)[:200])
            owners.put(host, None, FAILED_LOOKUP_TTL)
            return None
        owners.put(host, owner)
        return owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = request_host(scope)
            if host != self.public and could_be_domain(host):
                owner = await self._owner(scope, host)
                if owner is not None:
                    if not scope["path"].startswith(TRACKING_PREFIXES):
                        raise NotFound(f"No route {scope['path']} on {host}")
                    scope.setdefault("state", {})[OWNER_KEY] = owner
        await self.app(scope, receive, send)
