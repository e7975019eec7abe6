"""`vinesctl check --federation` against real peers: a running server with a certificate from a
CA in `ca_file` (verified), the same server reached for a domain its certificate does not name
(fails, and says how to fix it), the same with dialback opted in (a warning), a closed port
(unreachable), and our own self-signed certificate (a warning naming the fix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomli_w
from vines_server import certs

from tests.cli.conftest import LiveServer
from tests.support.ports import free_port
from tests.support.xmpp import DOMAIN, OTHER, PKI

CHECKER = "checker.test"


def test_check_federation_judges_every_peer(tmp_path: Path, run_cli: Any) -> None:
    # the peer hosts vines.test and other.test with a certificate naming vines.test only
    directory = tmp_path / "pki"
    directory.mkdir()
    ca_cert, ca_key = certs.make_ca("check CA")
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(certs.serialization.Encoding.PEM))
    cert, key = directory / "server.crt", directory / "server.key"
    certs.write_pem(*certs.make_certificate([DOMAIN], issuer=(ca_cert, ca_key)), cert, key)
    pki = PKI(directory, ca_file, cert, key)
    s2s_port = free_port()
    peer = LiveServer(
        tmp_path / "peer",
        pki,
        listeners={"s2s_port": s2s_port, "c2s_direct_tls_port": False},
        federation={"allow": [CHECKER]},
    )
    ours = tmp_path / "ours"
    ours.mkdir()
    certs.write_pem(*certs.make_certificate([CHECKER]), ours / "c.crt", ours / "c.key")
    route = {"host": "127.0.0.1", "port": s2s_port}
    config = {
        "domains": {CHECKER: {"certificate": "c.crt", "key": "c.key"}},
        "storage": {"backend": "sqlite", "path": "vines.sqlite"},
        "federation": {
            "allow": [DOMAIN, OTHER, "gone.test"],
            "ca_file": str(pki.ca_file),
            "peers": {
                DOMAIN: route,
                OTHER: route,
                "gone.test": {"host": "127.0.0.1", "port": free_port()},
            },
        },
    }
    path = ours / "vines.toml"
    path.write_text(tomli_w.dumps(config))
    try:
        r = run_cli("check", "--federation", "--config", str(path), "--json")
        assert r.exit_code == 1, r.stderr  # failed findings
        report = json.loads(r.stdout)
        found = {f["name"]: f for f in report["findings"]}
        assert found[f"{DOMAIN} certificate"]["status"] == "ok"
        assert found[f"{DOMAIN} TLS"]["detail"].split(": ")[1].startswith("TLS")
        wrong = found[f"{OTHER} certificate"]
        assert wrong["status"] == "fail" and f"not valid for {OTHER}" in wrong["detail"]
        assert "dialback = true" in wrong["fix"]
        gone = found["gone.test reachable"]
        assert gone["status"] == "fail" and "static route" in gone["fix"]
        own = found[f"our certificate {CHECKER}"]
        assert own["status"] == "warn" and "CA-signed" in own["fix"]
        assert {p["domain"] for p in report["data"]["peers"]} == {DOMAIN, OTHER, "gone.test"}

        r = run_cli("check", "--federation", "--config", str(path))
        assert r.exit_code == 1 and OTHER in r.stdout

        # with dialback opted in, the same certificate is a warning: dialback will do
        config["federation"]["peers"][OTHER]["dialback"] = True
        config["federation"]["allow"] = [OTHER]
        del config["federation"]["peers"]["gone.test"]
        path.write_text(tomli_w.dumps(config))
        r = run_cli("check", "--federation", "--config", str(path), "--json")
        found = {f["name"]: f for f in json.loads(r.stdout)["findings"]}
        assert found[f"{OTHER} certificate"]["status"] == "warn", found
        assert r.exit_code == 0
        r = run_cli("check", "example.org", "--federation")
        assert r.exit_code == 2 and r.stderr.count("\n") == 1
    finally:
        peer.stop()
