"""Outbound s2s resolution (server/net/resolve.py): the pure plan with a seeded random source,
and the whole lookup against a real dnsmasq."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import dns.asyncresolver
import pytest
from vines_server.net.resolve import (
    Endpoint,
    PeerNotFound,
    ServiceAnswer,
    SrvRecord,
    addresses,
    endpoints,
    plan,
)

from tests.support.dnsmasq import Dnsmasq

ZONE = [
    # both services, merged: xmpps at priority 5 first, two weighted at 10, a backup at 20
    "srv-host=_xmpps-server._tcp.both.test,tls.both.test,5270,5,0",
    "srv-host=_xmpp-server._tcp.both.test,heavy.both.test,5269,10,90",
    "srv-host=_xmpp-server._tcp.both.test,light.both.test,5269,10,10",
    "srv-host=_xmpp-server._tcp.both.test,backup.both.test,5269,20,0",
    # STARTTLS declared absent, direct TLS offered
    "srv-host=_xmpp-server._tcp.tlsonly.test",
    "srv-host=_xmpps-server._tcp.tlsonly.test,xmpp.tlsonly.test,443,0,0",
    # both declared absent: no XMPP server, no fallback although the domain has an address
    "srv-host=_xmpp-server._tcp.none.test",
    "srv-host=_xmpps-server._tcp.none.test",
    "host-record=none.test,127.0.0.1",
    # no SRV at all: the domain on 5269
    "host-record=plain.test,127.0.0.1",
]


@pytest.fixture(scope="module")
def resolver() -> Iterator[dns.asyncresolver.Resolver]:
    with Dnsmasq(ZONE) as server:
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [server.address]
        res.port = server.port
        res.lifetime = 5
        yield res


def srv(priority: int, weight: int, target: str, port: int = 5269) -> SrvRecord:
    return SrvRecord(priority, weight, port, target)


interop = pytest.mark.interop  # a real dnsmasq


@interop
async def test_both_services_merged_in_rfc2782_order(resolver):
    found = await endpoints("both.test", resolver=resolver, rng=random.Random(1))
    assert found[0] == Endpoint("tls.both.test", 5270, True, "srv", 5, 0)
    assert {e.host for e in found[1:3]} == {"heavy.both.test", "light.both.test"}
    assert found[3] == Endpoint("backup.both.test", 5269, False, "srv", 20, 0)


@interop
async def test_dot_target_removes_that_service_only(resolver):
    found = await endpoints("tlsonly.test", resolver=resolver)
    assert found == [Endpoint("xmpp.tlsonly.test", 443, True, "srv")]


@interop
async def test_every_service_absent_means_no_server_and_no_fallback(resolver):
    with pytest.raises(PeerNotFound, match=r"none\.test declares that it has no XMPP server"):
        await endpoints("none.test", resolver=resolver)


@interop
async def test_no_srv_falls_back_to_the_domain_on_5269(resolver):
    assert await endpoints("plain.test", resolver=resolver) == [
        Endpoint("plain.test", 5269, False, "fallback")
    ]


@interop
async def test_nxdomain_falls_back_too(resolver):
    assert await endpoints("missing.test", resolver=resolver) == [
        Endpoint("missing.test", 5269, False, "fallback")
    ]


@interop
async def test_static_route_overrides_dns(resolver):
    found = await endpoints("none.test", static=("127.0.0.1", 15269), resolver=resolver)
    assert found == [Endpoint("127.0.0.1", 15269, False, "static")]


async def test_dns_failure_falls_back_to_the_domain():
    """A resolver nobody answers: RFC 6120 3.2.2 says try the domain itself."""
    dead = dns.asyncresolver.Resolver(configure=False)
    dead.nameservers = ["127.0.0.2"]
    dead.port = 9  # discard: nothing answers
    dead.lifetime = 0.5
    assert await endpoints("plain.test", resolver=dead) == [
        Endpoint("plain.test", 5269, False, "fallback")
    ]


async def test_fallback_addresses_come_from_the_system_resolver():
    """The system resolver reads the hosts file (dnspython does not): localhost resolves."""
    found = await addresses(Endpoint("localhost", 5269, False, "fallback"))
    assert ("127.0.0.1", 5269) in [addr[:2] for _family, addr in found]


async def test_a_name_without_address_is_not_found():
    with pytest.raises(PeerNotFound, match="no address"):
        await addresses(Endpoint("nothing.invalid", 5269, False, "fallback"))


def test_plan_weighted_choice_within_a_priority():
    answers = {
        "_xmpp-server": ServiceAnswer(
            (srv(10, 90, "heavy."), srv(10, 10, "light."), srv(10, 0, "zero."), srv(1, 0, "first."))
        )
    }
    rng = random.Random(7)
    seconds = Counter(plan("x.test", answers, rng=rng)[1].host for _ in range(2000))
    assert seconds["heavy."] > 5 * seconds["light."] > 0
    assert seconds["zero."] < seconds["light."]
    assert all(plan("x.test", answers, rng=rng)[0].host == "first." for _ in range(50))


def test_plan_is_reproducible_with_a_seed():
    answers = {
        "_xmpps-server": ServiceAnswer((srv(0, 50, "a.", 5270), srv(0, 50, "b.", 5270))),
        "_xmpp-server": ServiceAnswer((srv(0, 50, "c."), srv(0, 50, "d."))),
    }
    first = plan("x.test", answers, rng=random.Random(3))
    assert plan("x.test", answers, rng=random.Random(3)) == first
    assert {(e.host, e.direct_tls) for e in first} == {
        ("a.", True),
        ("b.", True),
        ("c.", False),
        ("d.", False),
    }


def test_plan_dot_among_other_records_is_skipped_not_absent():
    answers = {"_xmpp-server": ServiceAnswer((srv(0, 0, "."), srv(5, 0, "real.test")))}
    assert [e.host for e in plan("x.test", answers)] == ["real.test"]


def test_plan_refuses_a_bad_domain():
    with pytest.raises(PeerNotFound, match="not a domain name"):
        plan("bad..domain", {})


def test_console_probe_uses_the_same_ordering():
    from vines_server.xmpp import srv as shared

    from vinesctl.probes import dns as dnsprobe

    assert dnsprobe.rfc2782_order is shared.rfc2782_order
