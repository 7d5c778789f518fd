"""DNS lookups through the resolver the operator chose (`IMAIL_DNS_RESOLVER`), else the system's.

Custom tracking domains (a CNAME to the server) and lead verification (MX, A fallback) read DNS here, so a
test, or an operator on a split-horizon network, points every lookup at one server."""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver


class DnsUnavailable(Exception):
    """The resolver could not answer (timeout, SERVFAIL, refused): the name's records are unknown, not
    absent."""


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, value: str) -> Nameserver:
        """`host` or `host:port` (IPv6 in brackets: `[::1]:5353`)."""
        value = value.strip()
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            port = rest.removeprefix(":")
        elif value.count(":") == 1:
            host, port = value.split(":")
        else:
            host, port = value, ""
        if not host:
            raise ValueError(f"no host in {value!r}")
        try:
            number = int(port) if port else 53
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        if not 0 < number < 65536:
            raise ValueError(f"bad port in {value!r}")
        return cls(host, number)


def parse_nameservers(value: str | None) -> tuple[Nameserver, ...]:
    """A comma-separated list of `host[:port]`; empty means the system's resolver."""
    if not value or not value.strip():
        return ()
    return tuple(Nameserver.parse(part) for part in value.split(",") if part.strip())


class Resolver:
    """Async lookups returning record texts; an absent name or type is an empty list."""

    def __init__(self, nameservers: tuple[Nameserver, ...] = (), timeout: float = 5.0):
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [ns.host for ns in nameservers]
            # dnspython takes one port for all nameservers, or a per-address map
            resolver.nameserver_ports = {ns.host: ns.port for ns in nameservers}
            resolver.port = nameservers[0].port
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        resolver.timeout = timeout
        self._resolver = resolver

    async def records(self, name: str, rtype: str) -> list[str]:
        """The records of `rtype` at `name` as text (`MX`: `"10 mx.example.com."`), [] when there are none."""
        try:
            answer = await self._resolver.resolve(name, rtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.YXDOMAIN) as exc:
            raise DnsUnavailable(f"{rtype} {name}: {exc}") from exc
        return [record.to_text() for record in answer]

    async def cname(self, name: str) -> str | None:
        """Where `name` points (without the final dot), or None."""
        found = await self.records(name, "CNAME")
        return found[0].rstrip(".").lower() if found else None

    async def mx_hosts(self, domain: str) -> list[str]:
        """The domain's mail exchangers in preference order (without final dots); [] when it has no MX."""
        ranked = []
        for record in await self.records(domain, "MX"):
            preference, _, host = record.partition(" ")
            ranked.append((int(preference), host.rstrip(".").lower()))
        return [host for _, host in sorted(ranked) if host]


def resolver(nameservers: str | None, timeout: float) -> Resolver:
    """The resolver for the settings `IMAIL_DNS_RESOLVER` and `IMAIL_DNS_TIMEOUT`."""
    return Resolver(parse_nameservers(nameservers), timeout)
