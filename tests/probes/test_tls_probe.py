"""`vinesctl tls` against real TLS endpoints with generated certificates (no mocks)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.probes.conftest import DOMAIN
from vinesctl.probes import tls as tlsprobe
from vinesctl.probes.findings import Status


def by_name(findings: list[dict]) -> dict[str, dict]:
    return {f["name"]: f for f in findings}


def run_tls(run_cli, port: int, *extra: str):
    result = run_cli("tls", DOMAIN, "--host", "127.0.0.1", "--port", str(port), "--json", *extra)
    return result, json.loads(result.stdout)


def test_valid_starttls_is_grade_a(run_cli, endpoint, pki):
    ep = endpoint("valid")
    result, data = run_tls(run_cli, ep.port, "--ca", str(pki.ca))
    assert result.exit_code == 0, result.stdout + result.stderr
    f = by_name(data["findings"])
    assert f["starttls"]["status"] == "ok" and "required" in f["starttls"]["detail"]
    assert f["trust"]["status"] == "ok"
    assert f["identity"]["status"] == "ok" and "DNS-ID example.test" in f["identity"]["detail"]
    assert f["versions"]["status"] == "ok"
    assert "TLSv1.3" in f["versions"]["detail"]
    target = data["data"]["result"]["targets"][0]
    assert target["grade"] == "A"
    leaf = target["chain"][0]
    assert leaf["xmpp_addrs"] == [DOMAIN]
    assert f"_xmpp-client.{DOMAIN}" in leaf["srv_names"]
    assert leaf["key_type"] == "EC secp256r1" and leaf["key_bits"] == 256
    assert leaf["signature_algorithm"] == "ecdsa-with-SHA256"
    assert target["handshake"]["sasl_mechanisms"] == ["SCRAM-SHA-256", "PLAIN"]
    assert data["status"] == "ok"


def test_direct_tls_offers_alpn(run_cli, endpoint, pki):
    ep = endpoint("valid", direct=True)
    result, data = run_tls(run_cli, ep.port, "--direct", "--ca", str(pki.ca))
    assert result.exit_code == 0, result.stdout
    f = by_name(data["findings"])
    assert "ALPN xmpp-client" in f["direct TLS"]["detail"]


def test_chain_is_read_beyond_the_leaf(endpoint, pki):
    ep = endpoint("chain")
    res = tlsprobe.probe(DOMAIN, host="127.0.0.1", port=ep.port, ca=str(pki.ca), versions=False)
    chain = res.targets[0].chain
    if not res.targets[0].chain_complete:
        pytest.skip("this Python has no unverified-chain call; only the leaf is available")
    assert [c.subject for c in chain] == [f"CN={DOMAIN}", "CN=vinesctl test CA"]
    assert chain[1].self_signed


def test_expired_certificate_fails(run_cli, endpoint, pki):
    ep = endpoint("expired")
    result, data = run_tls(run_cli, ep.port, "--ca", str(pki.ca))
    assert result.exit_code == 1
    f = by_name(data["findings"])
    assert f["validity"]["status"] == "fail" and "expired" in f["validity"]["detail"]
    assert f["validity"]["fix"]
    assert data["data"]["grade"] == "F"


def test_not_yet_valid_certificate_fails(endpoint, pki):
    ep = endpoint("future")
    res = tlsprobe.probe(DOMAIN, host="127.0.0.1", port=ep.port, ca=str(pki.ca), versions=False)
    f = {x.name: x for x in res.findings}
    assert f["validity"].status is Status.FAIL and "not valid before" in f["validity"].detail


def test_expiring_soon_warns(run_cli, endpoint, pki):
    ep = endpoint("expiring")
    result, data = run_tls(run_cli, ep.port, "--ca", str(pki.ca), "--no-versions")
    assert result.exit_code == 0
    assert by_name(data["findings"])["validity"]["status"] == "warn"
    strict = run_cli(
        "tls",
        DOMAIN,
        "--host",
        "127.0.0.1",
        "--port",
        str(ep.port),
        "--ca",
        str(pki.ca),
        "--no-versions",
        "--strict",
        "--json",
    )
    assert strict.exit_code == 1


def test_wrong_name_fails_identity(run_cli, endpoint, pki):
    ep = endpoint("wrongname")
    result, data = run_tls(run_cli, ep.port, "--ca", str(pki.ca))
    assert result.exit_code == 1
    f = by_name(data["findings"])
    assert f["identity"]["status"] == "fail"
    assert "other.test" in f["identity"]["detail"] and DOMAIN in f["identity"]["fix"]
    assert f["trust"]["status"] == "ok"  # trusted chain, wrong name: the two are separate


def test_self_signed_fails_trust(run_cli, endpoint):
    ep = endpoint("selfsigned")
    result, data = run_tls(run_cli, ep.port)
    assert result.exit_code == 1
    f = by_name(data["findings"])
    assert f["trust"]["status"] == "fail"
    assert "self-signed" in f["trust"]["detail"]
    assert "--ca" in f["trust"]["fix"]
    assert f["identity"]["status"] == "ok"


def test_private_ca_untrusted_without_ca_option(run_cli, endpoint):
    ep = endpoint("valid")
    result, data = run_tls(run_cli, ep.port, "--no-versions")
    assert result.exit_code == 1
    assert by_name(data["findings"])["trust"]["status"] == "fail"


def test_missing_xmppaddr_still_matches_by_dns_id(run_cli, endpoint, pki):
    ep = endpoint("noxmppaddr")
    result, data = run_tls(run_cli, ep.port, "--ca", str(pki.ca), "--no-versions")
    assert result.exit_code == 0
    leaf = data["data"]["result"]["targets"][0]["chain"][0]
    assert leaf["xmpp_addrs"] == [] and leaf["srv_names"] == []
    assert "DNS-ID" in by_name(data["findings"])["identity"]["detail"]


def test_rsa_key_reported(endpoint, pki):
    ep = endpoint("rsa")
    res = tlsprobe.probe(DOMAIN, host="127.0.0.1", port=ep.port, ca=str(pki.ca), versions=False)
    leaf = res.targets[0].chain[0]
    assert (leaf.key_type, leaf.key_bits) == ("RSA", 2048)
    assert leaf.signature_algorithm == "ecdsa-with-SHA256"  # the (EC) CA signed it


@pytest.mark.skipif(not tlsprobe.local_support("TLSv1"), reason="local OpenSSL cannot do TLS 1.0")
def test_tls10_accepted_warns(run_cli, endpoint, pki):
    ep = endpoint("valid", min_version="TLSv1")
    result, data = run_tls(run_cli, ep.port, "--ca", str(pki.ca))
    assert result.exit_code == 0, result.stdout
    f = by_name(data["findings"])
    assert f["versions"]["status"] == "warn"
    assert "TLSv1," in f["versions"]["detail"] and "disable" in f["versions"]["fix"]
    target = data["data"]["result"]["targets"][0]
    assert target["versions"]["TLSv1"] is True
    assert target["grade"] == "B"
    assert any("TLSv1" in r for r in target["grade_reasons"])
    strict = run_cli(
        "tls",
        DOMAIN,
        "--host",
        "127.0.0.1",
        "--port",
        str(ep.port),
        "--ca",
        str(pki.ca),
        "--strict",
        "--json",
    )
    assert strict.exit_code == 1


def test_starttls_not_required_warns(endpoint, pki):
    ep = endpoint("valid", required=False)
    res = tlsprobe.probe(DOMAIN, host="127.0.0.1", port=ep.port, ca=str(pki.ca), versions=False)
    f = {x.name: x for x in res.findings}
    assert f["starttls"].status is Status.WARN
    assert res.grade == "B"


def test_no_starttls_offered_fails(endpoint, pki):
    ep = endpoint("valid", starttls=False)
    res = tlsprobe.probe(DOMAIN, host="127.0.0.1", port=ep.port, ca=str(pki.ca), versions=False)
    f = {x.name: x for x in res.findings}
    assert f["connect"].status is Status.FAIL
    assert "STARTTLS is not offered" in f["connect"].detail


def test_direct_tls_against_starttls_port_fails(endpoint, pki):
    ep = endpoint("valid")
    res = tlsprobe.probe(
        DOMAIN, host="127.0.0.1", port=ep.port, direct=True, ca=str(pki.ca), timeout=3
    )
    f = {x.name: x for x in res.findings}
    assert f["connect"].status is Status.FAIL


def test_silent_server_times_out_as_a_finding(run_cli, endpoint):
    ep = endpoint("valid", silent=True)
    started = time.monotonic()
    result, data = run_tls(run_cli, ep.port, "--timeout", "1")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    f = by_name(data["findings"])
    assert "timed out" in f["connect"]["detail"]


def test_refused_port_fails():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        res = tlsprobe.probe(DOMAIN, host="127.0.0.1", port=port, timeout=3)
    f = {x.name: x for x in res.findings}
    assert f["connect"].status is Status.FAIL and "refused" in f["connect"].detail


def test_human_output_has_grade_and_chain(run_cli, endpoint, pki):
    ep = endpoint("valid")
    result = run_cli(
        "tls",
        DOMAIN,
        "--host",
        "127.0.0.1",
        "--port",
        str(ep.port),
        "--ca",
        str(pki.ca),
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0
    assert "grade A" in result.stdout
    assert "certificate chain" in result.stdout
    assert "all checks passed" in result.stdout


def test_usage_errors_exit_2(run_cli):
    assert run_cli("tls", DOMAIN, "--port", "0").exit_code == 2
    assert run_cli("tls", "bad domain").exit_code == 2
    assert run_cli("tls", DOMAIN, "--resolver", "not-an-ip").exit_code == 2


def test_srv_id_and_cn_rules(pki):
    from datetime import UTC, datetime

    base = dict(
        index=0,
        subject="CN=example.test",
        issuer="CN=x",
        ip_addresses=[],
        key_type="EC",
        key_bits=256,
        signature_algorithm="x",
        not_before=datetime.now(UTC),
        not_after=datetime.now(UTC),
        days_left=1,
        self_signed=False,
        sha256="",
    )
    srv_only = tlsprobe.CertInfo(
        dns_names=[], xmpp_addrs=[], srv_names=["_xmpp-client.example.test"], **base
    )
    assert tlsprobe.match_identity(srv_only, "example.test").startswith("SRV-ID")
    assert tlsprobe.match_identity(srv_only, "example.test", "server") == ""
    cn_only = tlsprobe.CertInfo(dns_names=[], xmpp_addrs=[], srv_names=[], **base)
    assert tlsprobe.match_identity(cn_only, "example.test").startswith("CN ")
    # a SAN present: the CN is ignored (RFC 6125 §6.4.4)
    other = tlsprobe.CertInfo(dns_names=["other.test"], xmpp_addrs=[], srv_names=[], **base)
    assert tlsprobe.match_identity(other, "example.test") == ""


def test_s2s_without_xmppaddr_is_noted_not_failed(endpoint, pki):
    ep = endpoint("noxmppaddr")
    res = tlsprobe.probe(
        DOMAIN, s2s=True, host="127.0.0.1", port=ep.port, ca=str(pki.ca), versions=False
    )
    f = {x.name: x for x in res.findings}
    assert f["identity"].status is Status.OK
    assert f["xmppAddr"].status is Status.OK and "optional" in f["xmppAddr"].detail
    assert res.kind == "server"


def test_a_refused_server_port_without_srv_records_is_a_closed_domain_not_a_fault():
    from vinesctl.probes.dns import Target
    from vinesctl.probes.tls import _closed_domain

    fallback = Target("example.org", 5269, False, "_xmpp-server", "fallback")
    promised = Target("xmpp.example.org", 5269, False, "_xmpp-server", "srv")
    assert _closed_domain(fallback, True, "connection refused")
    assert not _closed_domain(promised, True, "connection refused")  # an SRV record promised it
    assert not _closed_domain(fallback, False, "connection refused")  # clients must get in
    assert not _closed_domain(fallback, True, "timed out")  # a black hole is still a fault
