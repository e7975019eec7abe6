"""`vinesctl s2s` and `vinesctl s2s close` against the bundled server while a second instance
(peer.test) has a stream to it: the row shows direction, peer, TLS, EXTERNAL and the verdict."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vines_server import certs, config
from vines_server.server import Server
from vines_server.xmpp import ns
from vines_server.xmpp.stanza import make

from tests.cli.conftest import LiveServer
from tests.support.ports import free_port
from tests.support.xmpp import DOMAIN, OTHER, PASSWORD, PKI, TEST_ITERATIONS

PEER = "peer.test"
ADMIN = f"admin@{DOMAIN}"
ENV = {"VINESCTL_PASSWORD": PASSWORD}


def wait_for(live: LiveServer, condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not live.call(_check(condition)):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


async def _check(condition: Any) -> bool:
    return bool(condition())


def test_s2s_lists_and_closes_streams(tmp_path: Path, run_cli: Any) -> None:
    directory = tmp_path / "pki"
    directory.mkdir()
    ca_cert, ca_key = certs.make_ca("s2s cli CA")
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(certs.serialization.Encoding.PEM))
    ours = certs.make_certificate([DOMAIN, OTHER], issuer=(ca_cert, ca_key))
    certs.write_pem(*ours, directory / "server.crt", directory / "server.key")
    peer_cert = certs.make_certificate([PEER], issuer=(ca_cert, ca_key))
    certs.write_pem(*peer_cert, directory / "peer.crt", directory / "peer.key")
    pki = PKI(directory, ca_file, directory / "server.crt", directory / "server.key")

    ours_port, peer_port = free_port(), free_port()
    live = LiveServer(
        tmp_path / "server",
        pki,
        server={"admins": [ADMIN]},
        listeners={"s2s_port": ours_port, "c2s_direct_tls_port": False},
        federation={
            "allow": [PEER],
            "ca_file": str(ca_file),
            "peers": {PEER: {"host": "127.0.0.1", "port": peer_port}},
        },
    )
    peer_config = config.parse(
        {
            "domains": {
                PEER: {
                    "certificate": str(directory / "peer.crt"),
                    "key": str(directory / "peer.key"),
                }
            },
            "listeners": {"c2s_port": 0, "s2s_port": peer_port},
            "storage": {"backend": "sqlite", "path": str(tmp_path / "peer.sqlite")},
            "limits": {"pbkdf2_iterations": TEST_ITERATIONS},
            "federation": {
                "allow": [DOMAIN],
                "ca_file": str(ca_file),
                "peers": {DOMAIN: {"host": "127.0.0.1", "port": ours_port}},
            },
        },
        tmp_path / "peer.toml",
    )
    peer = Server(peer_config)
    try:
        live.call(peer.start())
        live.add_user("admin", PASSWORD)
        r = run_cli(
            "profile", "add", "vines", "--jid", ADMIN,
            "--server", f"127.0.0.1:{live.port}", "--ca", str(ca_file),
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr

        r = run_cli("s2s", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout) == {"streams": []}

        # a stanza from peer.test opens its stream to us
        hello = make(ns.q(ns.CLIENT, "message"), {"from": f"x@{PEER}", "to": f"nobody@{DOMAIN}"})
        live.call(peer.router.route(hello))
        wait_for(live, lambda: live.server.federation.inbound)

        r = run_cli("s2s", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        rows = json.loads(r.stdout)["streams"]
        inbound = next(row for row in rows if row["direction"] == "in")
        assert inbound["domain"] == PEER and inbound["auth"] == "EXTERNAL"
        assert inbound["certificate"] == "verified" and inbound["tls_version"].startswith("TLS")
        assert inbound["address"].startswith("127.0.0.1:") and inbound["since"]
        r = run_cli("s2s", env=ENV)
        assert r.exit_code == 0 and PEER in r.stdout and "EXTERNAL" in r.stdout

        r = run_cli("adhoc", "list", "--json", env=ENV)
        assert r.exit_code == 0, r.stderr
        assert "urn:vinesctl:admin#s2s" in r.stdout and "urn:vinesctl:admin#s2s-close" in r.stdout

        r = run_cli("s2s", "close", PEER, env=ENV)
        assert r.exit_code == 0, r.stderr
        wait_for(live, lambda: not live.server.federation.inbound)
        r = run_cli("s2s", "close", PEER, env=ENV)
        assert r.exit_code == 1 and f"no s2s stream with {PEER}" in r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    finally:
        live.call(peer.stop())
        live.stop()
