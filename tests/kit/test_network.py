"""The one address policy for outbound targets: IPv4 inside IPv6 is unwrapped and judged, loopback and private
ranges pass only when allowed, metadata, link-local, unspecified, multicast and reserved never do."""

from __future__ import annotations

import ipaddress

import pytest

from imail.kit.network import Kind, check_host, classify, embedded_ipv4, refused


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible (deprecated)
        ("::ffff:0:7f00:1", "127.0.0.1"),  # SIIT (RFC 6052 IPv4-translated)
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 well-known prefix
        ("64:ff9b:1:7f00:0:100::", "127.0.0.1"),  # NAT64 local-use prefix /48 (the u octet skipped)
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo: the client address, XORed
        ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("64:ff9b::808:808", "8.8.8.8"),
    ],
)
def test_every_ipv4_embedding_is_unwrapped(address, inner):
    assert embedded_ipv4(ipaddress.IPv6Address(address)) == ipaddress.IPv4Address(inner)


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",
        "::127.0.0.1",
        "::ffff:0:7f00:1",
        "64:ff9b::7f00:1",
        "64:ff9b:1:7f00:0:100::",
        "2002:7f00:1::",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:c0a8:101::",
    ],
)
def test_ipv6_carrying_a_non_public_ipv4_is_refused_even_where_private_ranges_are_allowed(address):
    assert refused(address, allow_private=False) is not None
    assert refused(address, allow_private=True) is Kind.embedded


def test_ipv6_carrying_a_public_ipv4_is_public():
    assert classify("64:ff9b::808:808") is Kind.public and classify("::ffff:93.184.216.34") is Kind.public


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", Kind.metadata),
        ("fd00:ec2::254", Kind.metadata),
        ("0.0.0.0", Kind.unspecified),
        ("0.1.2.3", Kind.unspecified),
        ("::", Kind.unspecified),
        ("169.254.1.1", Kind.link_local),
        ("fe80::1", Kind.link_local),
        ("fe80::1%2", Kind.link_local),
        ("224.0.0.1", Kind.multicast),
        ("255.255.255.255", Kind.multicast),
        ("ff02::1", Kind.multicast),
        ("240.0.0.1", Kind.reserved),
    ],
)
def test_internal_addresses_that_are_never_allowed(address, kind):
    assert classify(address) is kind
    assert refused(address, allow_private=True) is kind


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", Kind.loopback),
        ("127.9.9.9", Kind.loopback),
        ("::1", Kind.loopback),
        ("10.1.2.3", Kind.private),
        ("172.16.0.9", Kind.private),
        ("192.168.1.1", Kind.private),
        ("100.64.0.1", Kind.private),
        ("fd12:3456::1", Kind.private),
    ],
)
def test_loopback_and_private_addresses_only_when_allowed(address, kind):
    assert refused(address, allow_private=False) is kind
    assert refused(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address):
    assert refused(address, allow_private=False) is None


async def test_a_host_is_judged_by_every_address_and_local_names_without_a_lookup():
    assert (await check_host("localhost", 25, allow_private=False)).refusal == "localhost is a local name"
    allowed = await check_host("localhost", 25, allow_private=True)
    assert (
        allowed.refusal is None
        and allowed.addresses
        and all(ipaddress.ip_address(a).is_loopback for a in allowed.addresses)
    )
    literal = await check_host("[::ffff:127.0.0.1]", 25, allow_private=True)
    assert literal.kind is Kind.embedded and "::ffff:7f00:1" in (literal.refusal or "")
    unlooked = await check_host("smtp.example.invalid", 25, allow_private=False, resolve_names=False)
    assert (unlooked.addresses, unlooked.refusal) == ((), None)
