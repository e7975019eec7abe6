"""`vinesctl disco` and `vinesctl check` against the bundled server (real TLS, real DNS)."""

from __future__ import annotations

import json

import pytest

from tests.probes.live import DOMAIN, PASSWORD, bundled_server


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with bundled_server(tmp_path_factory.mktemp("bundled")) as harness:
        yield harness


@pytest.fixture
def login(live, monkeypatch, config_home):
    """Environment for the console's login: no profile file, JID and password from env."""
    monkeypatch.setenv("VINESCTL_JID", f"admin@{DOMAIN}")
    monkeypatch.setenv("VINESCTL_PASSWORD", PASSWORD)
    return ["--server", f"127.0.0.1:{live.port()}", "--ca", str(live.pki.ca_file)]


@pytest.fixture
def live_zone(live, zone):
    return zone(
        [
            f"srv-host=_xmpp-client._tcp.{DOMAIN},xmpp.{DOMAIN},{live.port()},0,0",
            f"srv-host=_xmpps-client._tcp.{DOMAIN},xmpp.{DOMAIN},{live.port('c2s-direct-tls')},0,0",
            f"host-record=xmpp.{DOMAIN},127.0.0.1",
        ]
    )


def test_disco_info_json(run_cli, login):
    r = run_cli("disco", DOMAIN, "--json", *login)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"category": "server", "type": "im"}.items() <= data["info"]["identities"][0].items()
    features = {f["var"]: f["name"] for f in data["info"]["features"]}
    assert features["urn:xmpp:ping"] == "XEP-0199 XMPP Ping"
    assert "http://jabber.org/protocol/disco#info" in features
    assert data["items"] is None and data["tree"] is None


def test_disco_defaults_to_own_domain_with_items_and_tree(run_cli, login):
    r = run_cli("disco", "--items", "--tree", "--depth", "1", "--json", *login)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["jid"] == DOMAIN
    assert isinstance(data["items"], list)
    assert data["tree"]["jid"] == DOMAIN


def test_disco_human_output(run_cli, login):
    r = run_cli("disco", DOMAIN, *login, env={"COLUMNS": "160"})
    assert r.exit_code == 0
    assert "XEP-0030 Service Discovery" in r.stdout and "identities of" in r.stdout


def test_disco_of_an_account(run_cli, login):
    r = run_cli("disco", f"admin@{DOMAIN}", "--json", *login)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["jid"] == f"admin@{DOMAIN}"


def test_disco_closed_domain_names_the_fix(run_cli, login):
    r = run_cli("disco", "elsewhere.example", *login)
    assert r.exit_code == 1
    assert "cannot reach elsewhere.example" in r.stderr
    assert "federation" in r.stderr
    assert "Traceback" not in r.stderr


def test_disco_untrusted_certificate(run_cli, live, monkeypatch, config_home):
    monkeypatch.setenv("VINESCTL_JID", f"admin@{DOMAIN}")
    monkeypatch.setenv("VINESCTL_PASSWORD", PASSWORD)
    r = run_cli("disco", "--server", f"127.0.0.1:{live.port()}")
    assert r.exit_code == 1
    assert "not trusted" in r.stderr and "--ca" in r.stderr


def test_disco_wrong_password(run_cli, login, monkeypatch):
    monkeypatch.setenv("VINESCTL_PASSWORD", "wrong")
    r = run_cli("disco", *login, "--timeout", "10")
    assert r.exit_code == 1
    assert "authentication failed" in r.stderr


def test_disco_usage_errors(run_cli, login):
    assert run_cli("disco", "--depth", "2", *login).exit_code == 2


def test_check_everything_against_bundled_server(run_cli, login, live_zone):
    r = run_cli("check", DOMAIN, "--resolver", live_zone.resolver, "--json", *login)
    data = json.loads(r.stdout)
    by_check: dict[str, list] = {}
    for f in data["findings"]:
        by_check.setdefault(f["check"], []).append(f)
    assert set(by_check) == {"dns", "connectivity", "tls", "features"}
    conn = [f for f in by_check["connectivity"] if f["status"] != "skip"]
    assert len(conn) == 2 and all(f["status"] == "ok" for f in conn)
    tls = {(f["target"], f["name"]): f for f in by_check["tls"]}
    assert all(f["status"] == "ok" for (_, name), f in tls.items() if name.startswith("client ")), [
        f for f in tls.values() if f["status"] != "ok"
    ]
    feats = {f["name"]: f for f in by_check["features"]}
    assert feats["Service Discovery (XEP-0030)"]["status"] == "ok"
    assert feats["XMPP Ping (XEP-0199)"]["status"] == "ok"
    assert feats["Direct TLS (XEP-0368)"]["status"] == "ok"
    assert all(f["fix"] for f in data["findings"] if f["status"] in ("warn", "fail"))
    worst = {"ok": 0, "skip": 0, "warn": 0, "fail": 1}
    assert r.exit_code == max(worst[f["status"]] for f in data["findings"])


def test_check_only_and_summary(run_cli, login, live_zone):
    args = ["check", DOMAIN, "--only", "dns,tls", "--no-versions", "--resolver", live_zone.resolver]
    r = run_cli(*args, *login, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.stdout
    assert "passed with warnings" in r.stdout  # the test ports are unusual
    data = json.loads(run_cli(*args, "--json", *login).stdout)
    assert {f["check"] for f in data["findings"]} == {"dns", "tls"}
    assert run_cli("check", DOMAIN, "--only", "dns,bogus").exit_code == 2


def test_check_without_profile_skips_features_with_reason(run_cli, live_zone, config_home):
    r = run_cli("check", DOMAIN, "--only", "features", "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 0
    [f] = data["findings"]
    assert f["status"] == "skip" and "no account" in f["detail"]


def test_check_unreachable_domain_skips_feature_audit(run_cli, login, zone):
    dz = zone(["host-record=closed.test,127.0.0.1"])
    r = run_cli(
        "check", "closed.test", "--only", "features", "--resolver", dz.resolver, "--json", *login
    )
    data = json.loads(r.stdout)
    [f] = data["findings"]
    assert f["status"] == "skip" and "cannot reach closed.test" in f["detail"]
    assert r.exit_code == 0


def test_check_nonexistent_domain_fails_clearly(run_cli, zone, config_home):
    dz = zone(["host-record=other.test,127.0.0.1"])
    r = run_cli("check", "nowhere.test", "--resolver", dz.resolver, "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert any(
        f["status"] == "fail" and "does not exist in DNS" in f["detail"] for f in data["findings"]
    )
