"""`vinesctl disco`, `tls` and `check` against a real Prosody (Debian package).

Skips locally when prosody is missing; fails under CI=true (the tool must be installed there).
"""

from __future__ import annotations

import json

import pytest

from tests.support.dnsmasq import Dnsmasq
from tests.support.prosody import PROSODY, ProsodyInstance

pytestmark = pytest.mark.interop

DOMAIN = "prosody.test"
PASSWORD = "interop password 1"
MODULES = (
    "carbons",
    "blocklist",
    "pep",
    "private",
    "vcard_legacy",
    "csi_simple",
    "smacks",
    "server_contact_info",
)
EXTRA = f"""
contact_info = {{
    abuse = {{ "mailto:abuse@{DOMAIN}" }};
    admin = {{ "xmpp:admin@{DOMAIN}" }};
}}
Component "conference.{DOMAIN}" "muc"
"""


@pytest.fixture(scope="module")
def prosody_full(tmp_path_factory):
    from tests.support.dnsmasq import require_tool

    require_tool("prosody", PROSODY)
    instance = ProsodyInstance(
        tmp_path_factory.mktemp("prosody"), domain=DOMAIN, modules=MODULES, extra_config=EXTRA
    )
    with instance:
        instance.register("admin", PASSWORD)
        yield instance


@pytest.fixture
def login(prosody_full, monkeypatch, config_home):
    monkeypatch.setenv("VINESCTL_JID", f"admin@{DOMAIN}")
    monkeypatch.setenv("VINESCTL_PASSWORD", PASSWORD)
    return [
        "--server",
        f"{prosody_full.host}:{prosody_full.port}",
        "--ca",
        str(prosody_full.ca_file),
    ]


def test_disco_prosody_info_forms_items_tree(run_cli, login):
    r = run_cli("disco", DOMAIN, "--items", "--tree", "--json", *login)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    identities = {(i["category"], i["type"]) for i in data["info"]["identities"]}
    assert ("server", "im") in identities
    features = {f["var"]: f["name"] for f in data["info"]["features"]}
    assert features["urn:xmpp:carbons:2"] == "XEP-0280 Message Carbons"
    forms = {f["form_type"]: f["fields"] for f in data["info"]["forms"]}
    info = forms["http://jabber.org/network/serverinfo"]
    assert info["abuse-addresses"] == [f"mailto:abuse@{DOMAIN}"]
    assert f"conference.{DOMAIN}" in {i["jid"] for i in data["items"]}
    children = {c["jid"]: c for c in data["tree"]["children"]}
    muc = children[f"conference.{DOMAIN}"]
    assert {"category": "conference", "type": "text"}.items() <= muc["identities"][0].items()


def test_disco_prosody_human(run_cli, login):
    r = run_cli("disco", DOMAIN, "--tree", *login, env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.stderr
    assert "extended info http://jabber.org/network/serverinfo" in r.stdout
    assert f"conference.{DOMAIN}" in r.stdout


def test_disco_prosody_closed_domain(run_cli, login):
    r = run_cli("disco", "elsewhere.example", *login, "--timeout", "20")
    assert r.exit_code == 1
    assert "cannot reach elsewhere.example" in r.stderr, r.stderr


def test_tls_prosody(run_cli, prosody_full):
    r = run_cli(
        "tls",
        DOMAIN,
        "--host",
        prosody_full.host,
        "--port",
        str(prosody_full.port),
        "--ca",
        str(prosody_full.ca_file),
        "--json",
    )
    data = json.loads(r.stdout)
    assert r.exit_code == 0, [f for f in data["findings"] if f["status"] == "fail"]
    f = {x["name"]: x for x in data["findings"]}
    assert f["starttls"]["detail"] == "STARTTLS offered and required"
    assert f["identity"]["status"] == "ok" and f["trust"]["status"] == "ok"
    target = data["data"]["result"]["targets"][0]
    assert "SCRAM-SHA-1" in target["handshake"]["sasl_mechanisms"]


def test_check_prosody_feature_audit(run_cli, prosody_full, login):
    zone = [
        f"srv-host=_xmpp-client._tcp.{DOMAIN},xmpp.{DOMAIN},{prosody_full.port},0,0",
        f"host-record=xmpp.{DOMAIN},127.0.0.1",
    ]
    with Dnsmasq(zone) as dz:
        r = run_cli("check", DOMAIN, "--resolver", dz.resolver, "--no-versions", "--json", *login)
    data = json.loads(r.stdout)
    feats = {f["name"]: f["status"] for f in data["findings"] if f["check"] == "features"}
    for name in (
        "Service Discovery (XEP-0030)",
        "Message Carbons (XEP-0280)",
        "Blocking Command (XEP-0191)",
        "Multi-User Chat (XEP-0045)",
        "Personal Eventing Protocol (XEP-0163)",
        "Client State Indication (XEP-0352)",
        "Stream Management (XEP-0198)",
        "Roster versioning (RFC 6121)",
        "Contact Addresses (XEP-0157)",
    ):
        assert feats[name] == "ok", (name, feats)
    assert feats["Direct TLS (XEP-0368)"] == "warn"  # no _xmpps-client record in this zone
    assert feats["Push Notifications (XEP-0357)"] == "warn"
    conn = [f for f in data["findings"] if f["check"] == "connectivity" and f["status"] != "skip"]
    assert conn and all(f["status"] == "ok" for f in conn)
    assert r.exit_code == 0, [f for f in data["findings"] if f["status"] == "fail"]


def test_tls_prosody_s2s_port(run_cli, tmp_path):
    with ProsodyInstance(tmp_path, domain=DOMAIN, s2s=True) as s2s:
        r = run_cli(
            "tls",
            DOMAIN,
            "--s2s",
            "--host",
            s2s.host,
            "--port",
            str(s2s.s2s_port),
            "--ca",
            str(s2s.ca_file),
            "--json",
        )
    data = json.loads(r.stdout)
    assert r.exit_code == 0, [f for f in data["findings"] if f["status"] == "fail"]
    assert data["data"]["result"]["kind"] == "server"
    f = {x["name"]: x for x in data["findings"]}
    assert f["identity"]["status"] == "ok" and "DNS-ID" in f["identity"]["detail"]
