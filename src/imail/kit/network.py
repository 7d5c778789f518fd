"""Which network addresses the server may connect to on a customer's say-so (webhook URLs, mail servers).

One policy for every outbound target, so the server cannot be turned against its own network: an address is
judged after unwrapping any IPv4 address carried inside an IPv6 one (mapped, compatible, SIIT, NAT64, 6to4,
Teredo), since a dual-stack socket or a translating gateway delivers those to the IPv4 address inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from enum import Enum

RESOLVE_TIMEOUT = 3.0
# Names that only ever mean "this machine" or "this site's network".
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 6052/7915 IPv4-translated: ::ffff:0:a.b.c.d
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated RFC 4291 §2.5.5.1: ::a.b.c.d
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))  # RFC 6052, RFC 8215
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class Kind(Enum):
    """What an address is, as far as connecting to it goes. The first four are never connected to."""

    metadata = "a cloud metadata"
    unspecified = "an unspecified"
    link_local = "a link-local"
    multicast = "a multicast or broadcast"
    reserved = "a reserved"
    embedded = "an IPv6 address carrying a non-public IPv4"
    loopback = "a loopback"
    private = "a private"
    public = "a public"


ALWAYS_REFUSED = frozenset(
    {Kind.metadata, Kind.unspecified, Kind.link_local, Kind.multicast, Kind.reserved, Kind.embedded}
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (and delivers to), or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _SIIT or (ip in _IPV4_COMPATIBLE and int(ip) > 1) or any(ip in net for net in _NAT64):
        if (
            ip in _NAT64[1]
        ):  # RFC 6052 /48 prefix: the IPv4 address sits in bits 48-63 and 72-87 (u octet skipped)
            packed = ip.packed
            return ipaddress.IPv4Address(packed[6:8] + packed[9:11])
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server's is public by construction
    return None


def _kind_v4(ip: ipaddress.IPv4Address) -> Kind:
    if ip in _METADATA:
        return Kind.metadata
    if ip.is_unspecified or ip in ipaddress.IPv4Network("0.0.0.0/8"):
        return Kind.unspecified
    if ip.is_link_local:
        return Kind.link_local
    if ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        return Kind.multicast
    if ip.is_reserved:
        return Kind.reserved
    if ip.is_loopback:
        return Kind.loopback
    if ip.is_private or ip in _CGNAT or not ip.is_global:
        return Kind.private
    return Kind.public


def classify(address: str | IPAddress) -> Kind:
    """What an IP address (text, an IPv6 zone allowed) is; an IPv6 address carrying IPv4 is judged by that."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _kind_v4(ip)
    if ip in _METADATA:
        return Kind.metadata
    if ip.is_unspecified:
        return Kind.unspecified
    if ip.is_loopback:
        return Kind.loopback
    inner = embedded_ipv4(ip)
    if inner is not None:
        kind = _kind_v4(inner)
        return Kind.public if kind is Kind.public else Kind.embedded
    if ip.is_link_local:
        return Kind.link_local
    if ip.is_multicast:
        return Kind.multicast
    if ip.is_private or not ip.is_global:  # ULA fc00::/7, documentation, discard-only…
        return Kind.private
    return Kind.public


def refused(address: str | IPAddress, *, allow_private: bool) -> Kind | None:
    """Why this address must not be connected to (its kind), or None. `allow_private` lets loopback and
    private ranges through (an operator whose servers are on its own network); never metadata, link-local and
    the like."""
    kind = classify(address)
    if kind is Kind.public:
        return None
    if allow_private and kind in (Kind.loopback, Kind.private):
        return None
    return kind


def literal_ip(host: str) -> str | None:
    """The host as a normalised IP address when it is one (`[::1]` too), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def is_local_name(host: str) -> bool:
    lowered = host.lower().rstrip(".")
    return lowered == "localhost" or lowered.endswith(LOCAL_SUFFIXES)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to, in the resolver's order of preference (empty when it does not
    resolve in time)."""
    literal = literal_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
    except (TimeoutError, OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Checked:
    """A host resolved once and judged: connect only to `addresses` (the ones checked), name TLS after the
    host."""

    host: str
    addresses: tuple[str, ...] = ()
    refusal: str | None = None  # why not, in words naming the address; None when `addresses` may be dialled
    kind: Kind | None = None  # what the refused address is


async def check_host(host: str, port: int, *, allow_private: bool, resolve_names: bool = True) -> Checked:
    """Resolve `host` once and judge every address it has: one refused address refuses the host (the name
    could hand either one to a connection). No addresses and no refusal: the name does not resolve (or,
    without `resolve_names`, was not looked up: only IP literals and local names are judged then)."""
    if not allow_private and is_local_name(host):
        return Checked(host, refusal=f"{host} is a local name", kind=Kind.loopback)
    if not resolve_names and literal_ip(host) is None:
        return Checked(host)
    addresses = await resolve(host, port)
    for address in addresses:
        kind = refused(address, allow_private=allow_private)
        if kind is not None:
            shown = address if literal_ip(host) == address else f"{host} ({address})"
            return Checked(host, refusal=f"{shown} is {kind.value} address", kind=kind)
    return Checked(host, tuple(addresses))
