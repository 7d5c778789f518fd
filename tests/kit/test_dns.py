"""The resolver reads the server the operator names, and tells an absent record from an unreachable
resolver."""

from __future__ import annotations

import pytest

from imail.config import Settings
from imail.kit.dns import DnsUnavailable, Nameserver, parse_nameservers, resolver


async def test_lookups_go_to_the_configured_server(dns_server):
    dns_server.zone.add("acme.test", "MX", "20 backup.acme.test.")
    dns_server.zone.add("acme.test", "MX", "10 mx.acme.test.")
    dns_server.zone.add("track.acme.test", "CNAME", "imail.example.net.")
    lookups = resolver(dns_server.address, 2)
    assert await lookups.mx_hosts("acme.test") == ["mx.acme.test", "backup.acme.test"]
    assert await lookups.cname("track.acme.test") == "imail.example.net"
    assert await lookups.records("acme.test", "A") == []  # the name exists, without that type
    assert await lookups.records("missing.test", "MX") == []  # NXDOMAIN
    assert ("acme.test", "MX") in dns_server.zone.queries


async def test_a_failing_resolver_is_unknown_not_absent(dns_server):
    dns_server.zone.fail("down.test")
    with pytest.raises(DnsUnavailable):
        await resolver(dns_server.address, 2).records("down.test", "MX")


def test_nameserver_setting():
    assert parse_nameservers(None) == ()
    assert parse_nameservers("127.0.0.1:5353, 10.0.0.2") == (
        Nameserver("127.0.0.1", 5353),
        Nameserver("10.0.0.2"),
    )
    assert parse_nameservers("[::1]:53") == (Nameserver("::1", 53),)
    for bad in ("127.0.0.1:dns", "127.0.0.1:70000", ":53"):
        with pytest.raises(ValueError):
            parse_nameservers(bad)
    with pytest.raises(ValueError, match="dns_resolver"):
        Settings(dns_resolver="127.0.0.1:x")
