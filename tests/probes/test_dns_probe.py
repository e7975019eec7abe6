"""`vinesctl dns` (and the DNS half of `tls`) against a real dnsmasq serving a test zone."""

from __future__ import annotations

import json
import random
import socket
import time

import pytest

from tests.probes.conftest import DOMAIN
from vinesctl.probes import dns as dnsprobe
from vinesctl.probes.findings import Status

BROKEN_ZONE = [
    # good: two priorities, weights, plus a direct TLS record merged into the same order
    "srv-host=_xmpp-client._tcp.good.test,xmpp1.good.test,5222,10,60",
    "srv-host=_xmpp-client._tcp.good.test,xmpp2.good.test,5222,10,40",
    "srv-host=_xmpp-client._tcp.good.test,backup.good.test,5222,20,0",
    "srv-host=_xmpps-client._tcp.good.test,xmpp1.good.test,5223,5,0",
    "srv-host=_xmpp-server._tcp.good.test,xmpp1.good.test,5269,0,0",
    "host-record=xmpp1.good.test,127.0.0.1",
    "host-record=xmpp2.good.test,127.0.0.1",
    "host-record=backup.good.test,127.0.0.1",
    # '.' target: the service is declared absent
    "srv-host=_xmpp-client._tcp.dot.test",
    "host-record=dot.test,127.0.0.1",
    # a target that is an alias
    "srv-host=_xmpp-client._tcp.cname.test,alias.cname.test,5222,0,0",
    "cname=alias.cname.test,real.cname.test",
    "host-record=real.cname.test,127.0.0.1",
    # a target without A/AAAA
    "srv-host=_xmpp-client._tcp.missing.test,nohost.missing.test,5222,0,0",
    # no SRV at all: fallback to the domain's address
    "host-record=nosrv.test,127.0.0.1",
    # the same host:port for STARTTLS and direct TLS, and for client and server
    "srv-host=_xmpp-client._tcp.same.test,xmpp.same.test,5222,0,0",
    "srv-host=_xmpps-client._tcp.same.test,xmpp.same.test,5222,0,0",
    "srv-host=_xmpp-server._tcp.same.test,xmpp.same.test,5222,0,0",
    "host-record=xmpp.same.test,127.0.0.1",
    # an unusual port
    "srv-host=_xmpp-client._tcp.odd.test,xmpp.odd.test,8222,0,0",
    "host-record=xmpp.odd.test,127.0.0.1",
]


@pytest.fixture
def broken(zone):
    return zone(BROKEN_ZONE)


def names(result) -> dict[str, object]:
    return {f.name: f for f in result.findings}


def test_good_zone_order_and_merge(broken):
    res = dnsprobe.lookup("good.test", "client", resolver=broken.resolver, timeout=5)
    order = [(t.host, t.port, t.direct_tls) for t in res.targets]
    # xmpps (priority 5) first, then the two priority-10 targets, then the backup (20)
    assert order[0] == ("xmpp1.good.test", 5223, True)
    assert {o[0] for o in order[1:3]} == {"xmpp1.good.test", "xmpp2.good.test"}
    assert order[3] == ("backup.good.test", 5222, False)
    assert all(t.addresses == ["127.0.0.1"] for t in res.targets)
    assert all(f.status is Status.OK for f in res.findings), res.findings


def test_rfc2782_weights():
    recs = [
        dnsprobe.SrvRecord("_xmpp-client", 10, 90, 5222, "heavy.", False),
        dnsprobe.SrvRecord("_xmpp-client", 10, 10, 5222, "light.", False),
        dnsprobe.SrvRecord("_xmpp-client", 10, 0, 5222, "zero.", False),
        dnsprobe.SrvRecord("_xmpp-client", 1, 0, 5222, "first.", False),
    ]
    rng = random.Random(4)
    firsts: dict[str, int] = {}
    for _ in range(2000):
        order = dnsprobe.rfc2782_order(recs, rng)
        assert order[0].target == "first."
        assert {r.target for r in order} == {"heavy.", "light.", "zero.", "first."}
        firsts[order[1].target] = firsts.get(order[1].target, 0) + 1
    assert firsts["heavy."] > 5 * firsts["light."]
    assert firsts.get("zero.", 0) < firsts["light."]


def test_dot_target_means_absent_without_fallback(broken):
    res = dnsprobe.lookup("dot.test", "client", resolver=broken.resolver)
    assert res.targets == []  # dot.test has an A record, but '.' forbids the fallback
    f = names(res)["_xmpp-client._tcp.dot.test"]
    assert f.status is Status.WARN and "declared unavailable" in f.detail
    assert res.lookups[0].absent


def test_dot_target_without_server_records_is_no_service(run_cli, broken):
    """dot.test declares its client service absent and publishes no _xmpp-server records:
    `check` fails (it does not pass with warnings)."""
    client = dnsprobe.lookup("dot.test", "client", resolver=broken.resolver)
    server = dnsprobe.lookup("dot.test", "server", resolver=broken.resolver, required=False)
    (finding,) = dnsprobe.cross_check([client, server])
    assert finding.status is Status.FAIL and "offers no XMPP service" in finding.detail
    good = [dnsprobe.lookup("good.test", k, resolver=broken.resolver) for k in ("client", "server")]
    assert dnsprobe.cross_check(good) == []
    r = run_cli("check", "dot.test", "--resolver", broken.resolver, "--only", "dns", "--json")
    assert r.exit_code == 1
    assert any("offers no XMPP service" in f["detail"] for f in json.loads(r.stdout)["findings"])


def test_dot_target_cli_tls_fails_with_reason(run_cli, broken):
    r = run_cli("tls", "dot.test", "--resolver", broken.resolver, "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert any("no client targets" in f["detail"] for f in data["findings"])


def test_cname_target_warns(broken):
    res = dnsprobe.lookup("cname.test", "client", resolver=broken.resolver)
    f = names(res)["target alias.cname.test"]
    assert f.status is Status.WARN and "real.cname.test" in f.detail
    assert res.targets[0].addresses == ["127.0.0.1"]


def test_unresolvable_target_fails(broken):
    res = dnsprobe.lookup("missing.test", "client", resolver=broken.resolver)
    f = names(res)["target nohost.missing.test"]
    assert f.status is Status.FAIL and "does not resolve" in f.detail
    assert "nohost.missing.test" in f.fix


def test_no_srv_falls_back_to_domain(broken):
    res = dnsprobe.lookup("nosrv.test", "client", resolver=broken.resolver)
    assert [(t.host, t.port, t.source) for t in res.targets] == [("nosrv.test", 5222, "fallback")]
    f = names(res)["client fallback"]
    assert f.status is Status.WARN and "127.0.0.1" in f.detail


def test_nonexistent_domain_is_a_clear_failure(run_cli, broken):
    r = run_cli("dns", "nowhere.test", "--resolver", broken.resolver, "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    fails = [f for f in data["findings"] if f["status"] == "fail"]
    assert any("does not exist in DNS" in f["detail"] for f in fails)
    human = run_cli("dns", "nowhere.test", "--resolver", broken.resolver, env={"COLUMNS": "200"})
    assert human.exit_code == 1 and "does not exist in DNS" in human.stdout


def test_same_port_for_starttls_and_direct_tls(broken):
    res = dnsprobe.lookup("same.test", "client", resolver=broken.resolver)
    bad = [f for f in res.findings if "both STARTTLS" in f.detail]
    assert bad and bad[0].status is Status.FAIL
    server = dnsprobe.lookup("same.test", "server", resolver=broken.resolver)
    cross = dnsprobe.cross_check([res, server])
    assert cross and "client and server" in cross[0].detail


def test_unusual_port_warns(broken):
    res = dnsprobe.lookup("odd.test", "client", resolver=broken.resolver)
    f = names(res)["port xmpp.odd.test:8222"]
    assert f.status is Status.WARN and "unusual port 8222" in f.detail


def test_dns_timeout_is_a_finding():
    # a UDP socket that never answers: the query times out within --timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        res = dnsprobe.lookup("good.test", "client", resolver=f"127.0.0.1:{port}", timeout=1)
        assert time.monotonic() - started < 8
    fails = [f for f in res.findings if f.status is Status.FAIL]
    assert fails and "timed out" in fails[0].detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_parse_resolver(text, expected):
    assert dnsprobe.parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["dns.example", "127.0.0.1:0", "[::1", "1.2.3.4:x"])
def test_parse_resolver_rejects(text):
    with pytest.raises(ValueError):
        dnsprobe.parse_resolver(text)


def test_bad_resolver_is_usage_error(run_cli):
    r = run_cli("dns", "good.test", "--resolver", "resolver.example")
    assert r.exit_code == 2


def test_dns_end_to_end_with_connection_tests(run_cli, zone, endpoint, pki):
    starttls = endpoint("valid")
    direct = endpoint("valid", direct=True)
    wrong = endpoint("wrongname")
    dz = zone(
        [
            f"srv-host=_xmpp-client._tcp.{DOMAIN},xmpp.{DOMAIN},{starttls.port},0,0",
            f"srv-host=_xmpps-client._tcp.{DOMAIN},xmpp.{DOMAIN},{direct.port},0,0",
            f"srv-host=_xmpp-server._tcp.{DOMAIN},s2s.{DOMAIN},{wrong.port},0,0",
            f"host-record=xmpp.{DOMAIN},127.0.0.1",
            f"host-record=s2s.{DOMAIN},127.0.0.1",
        ]
    )
    r = run_cli("dns", DOMAIN, "--resolver", dz.resolver, "--ca", str(pki.ca), "--json")
    data = json.loads(r.stdout)
    conn = [f for f in data["findings"] if f["check"] == "connectivity"]
    by_target = {f["target"]: f for f in conn}
    assert by_target[f"xmpp.{DOMAIN}:{starttls.port}"]["status"] == "ok"
    assert by_target[f"xmpp.{DOMAIN}:{direct.port}"]["status"] == "ok"
    assert "direct TLS ok" in by_target[f"xmpp.{DOMAIN}:{direct.port}"]["detail"]
    s2s = by_target[f"s2s.{DOMAIN}:{wrong.port}"]
    assert s2s["status"] == "warn" and "not valid for" in s2s["detail"]
    # only warnings (unusual test ports, wrong s2s name): exit 0, and 1 with --strict
    assert r.exit_code == 0, [f for f in data["findings"] if f["status"] == "fail"]
    strict = run_cli(
        "dns", DOMAIN, "--resolver", dz.resolver, "--ca", str(pki.ca), "--strict", "--json"
    )
    assert strict.exit_code == 1
    # the same targets through `tls`: SNI and identity use the domain, not the SRV target
    t = run_cli("tls", DOMAIN, "--resolver", dz.resolver, "--ca", str(pki.ca), "--json")
    assert t.exit_code == 0, t.stdout
    tdata = json.loads(t.stdout)
    assert len(tdata["data"]["result"]["targets"]) == 2
    assert tdata["data"]["grade"] == "A"
    s = run_cli("tls", DOMAIN, "--s2s", "--resolver", dz.resolver, "--ca", str(pki.ca), "--json")
    assert s.exit_code == 1
    assert any(
        f["name"] == "identity" and f["status"] == "fail" for f in json.loads(s.stdout)["findings"]
    )


def test_client_only_checks_skip_server_side(run_cli, broken):
    r = run_cli(
        "dns", "good.test", "--client", "--no-connect", "--resolver", broken.resolver, "--json"
    )
    data = json.loads(r.stdout)
    assert [res["kind"] for res in data["data"]["results"]] == ["client"]
    assert r.exit_code == 0


def test_hosts_file_gives_the_fallback_addresses_dns_lacks(tmp_path):
    from vinesctl.probes.dns import hosts_file_addresses

    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.0.1 localhost\n::1 localhost ip6-localhost  # loopback\n"
        "# 10.0.0.9 localhost\n192.0.2.7 chat.example chat\n"
    )
    assert hosts_file_addresses("localhost", str(hosts)) == ["127.0.0.1", "::1"]
    assert hosts_file_addresses("chat", str(hosts)) == ["192.0.2.7"]
    assert hosts_file_addresses("example", str(hosts)) == []
    assert hosts_file_addresses("localhost", str(tmp_path / "missing")) == []
