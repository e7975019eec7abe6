"""Federation with a real Prosody (Debian's 0.12): its own config on 127.0.0.2, a test CA both
trust, our side reaching it by a static route, Prosody reaching us through a dnsmasq zone
(SRV _xmpp-server._tcp.vines.test) it sees as its only nameserver. Messages, subscription and
presence, iq ping and disco cross both ways with SASL EXTERNAL; a Prosody off our allowlist is
refused both ways."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from vines_server import certs, config
from vines_server.server import Server
from vines_server.xmpp.sasl.credentials import derive_all

from tests.interop.conftest import _missing
from tests.support.dnsmasq import DNSMASQ, Dnsmasq
from tests.support.ports import free_port, loopback_address
from tests.support.prosody import ProsodyInstance, prosody_available
from tests.support.xmpp import PASSWORD, TEST_ITERATIONS, RawClient

pytestmark = pytest.mark.interop

OURS, THEIRS = "vines.test", "prosody.test"
DNS_ADDRESS = loopback_address()  # port 53: Prosody's resolver takes no port


@asynccontextmanager
async def federated(tmp: Path, allow_prosody: bool = True) -> AsyncIterator[tuple]:
    root = os.geteuid() == 0  # unshare + mount for Prosody's resolv.conf; port 53 for dnsmasq
    reasons = (
        prosody_available(),
        None if DNSMASQ else "dnsmasq is not installed",
        None if root else "federating with Prosody needs root (its own resolv.conf, port 53)",
    )
    for reason in reasons:
        if reason:
            _missing(reason)
    ca_cert, ca_key = certs.make_ca("s2s interop CA")
    pem = certs.serialization.Encoding.PEM
    prosody = ProsodyInstance(
        tmp,
        THEIRS,
        s2s=True,
        host="127.0.0.2",
        nameserver=DNS_ADDRESS,
        extra_config="s2s_secure_auth = true",
    )
    # one CA for both: Prosody's certificate and trust anchors are replaced before it starts
    prosody.ca_file.write_bytes(ca_cert.public_bytes(pem))
    certs.write_pem(
        *certs.make_certificate([THEIRS], issuer=(ca_cert, ca_key)),
        prosody.cert_file,
        prosody.key_file,
    )
    ours_dir = tmp / "ours"
    ours_dir.mkdir()
    cert, key = ours_dir / "vines.crt", ours_dir / "vines.key"
    certs.write_pem(*certs.make_certificate([OURS], issuer=(ca_cert, ca_key)), cert, key)
    s2s_port = free_port()
    raw = {
        "domains": {OURS: {"certificate": str(cert), "key": str(key)}},
        "listeners": {"c2s_port": 0, "c2s_direct_tls_port": False, "s2s_port": s2s_port},
        "storage": {"backend": "sqlite", "path": str(ours_dir / "vines.sqlite")},
        "limits": {"pbkdf2_iterations": TEST_ITERATIONS},
        "federation": {
            "allow": [THEIRS] if allow_prosody else ["elsewhere.test"],
            "ca_file": str(prosody.ca_file),
            "peers": {THEIRS: {"host": prosody.host, "port": prosody.s2s_port}},
        },
    }
    server = Server(config.parse(raw, ours_dir / "vines.toml"))
    zone = [
        f"srv-host=_xmpp-server._tcp.{OURS},{OURS},{s2s_port},0,0",
        f"address=/{OURS}/127.0.0.1",
    ]
    with Dnsmasq(zone, address=DNS_ADDRESS, port=53):
        prosody.start()
        await server.start()
        try:
            yield server, prosody
        finally:
            await server.stop()
            prosody.stop()


async def ours_login(server: Server, local: str) -> RawClient:
    await server.storage.create_account(f"{local}@{OURS}", derive_all(PASSWORD, TEST_ITERATIONS))
    port = next(li.port for li in server.listening if li.kind == "c2s-starttls")
    client = await RawClient.connect(port, server.config.federation.ca_file)
    await client.login(local, PASSWORD, to=OURS)
    return await _ready(client)


async def prosody_login(prosody: ProsodyInstance, local: str) -> RawClient:
    prosody.register(local, PASSWORD)
    client = await RawClient.connect(prosody.port, prosody.ca_file, host=prosody.host)
    await client.login(local, PASSWORD, to=THEIRS)
    return await _ready(client)


async def _ready(client: RawClient) -> RawClient:
    # an interested, available resource (RFC 6121): roster first, then presence
    await client.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
    await client.read_until(rb"id='roster'.*?(</iq>|/>)", timeout=10)
    await client.send("<presence/>")
    return client


async def test_messages_presence_and_iq_cross_with_prosody(tmp_path: Path) -> None:
    async with federated(tmp_path) as (server, prosody):
        alice = await ours_login(server, "alice")
        carol = await prosody_login(prosody, "carol")

        # ours -> Prosody, then Prosody -> ours
        await alice.send(f"<message to='carol@{THEIRS}' id='m1'><body>hi carol</body></message>")
        got = await carol.read_until(rb"hi carol.*?</message>", timeout=20)
        assert f"alice@{OURS}".encode() in got
        await carol.send(f"<message to='alice@{OURS}' id='m2'><body>hi alice</body></message>")
        got = await alice.read_until(rb"hi alice.*?</message>", timeout=20)
        assert f"carol@{THEIRS}".encode() in got

        # subscription and presence: alice asks, carol approves, alice sees carol
        await alice.send(f"<presence to='carol@{THEIRS}' type='subscribe'/>")
        got = await carol.read_until(rb"<presence[^>]*type=.subscribe.[^>]*>", timeout=20)
        assert f"alice@{OURS}".encode() in got
        await carol.send(f"<presence to='alice@{OURS}' type='subscribed'/>")
        await alice.read_until(rb"type=.subscribed.", timeout=20)
        carol_presence = rf"<presence(?![^>]*type=)[^>]*from=.carol@{THEIRS}/[^>]*>"
        await alice.read_until(carol_presence.encode(), timeout=20)

        # iq across: ping and disco#info of the other server, both ways
        await alice.send(f"<iq type='get' id='p1' to='{THEIRS}'><ping xmlns='urn:xmpp:ping'/></iq>")
        got = await alice.read_until(rb"id=.p1.*?(</iq>|/>)", timeout=20)
        assert b"result" in got
        disco = "<query xmlns='http://jabber.org/protocol/disco#info'/>"
        await carol.send(f"<iq type='get' id='d1' to='{OURS}'>{disco}</iq>")
        got = await carol.read_until(rb"id=.d1.*?</iq>", timeout=20)
        assert b"result" in got and b"urn:xmpp:ping" in got

        rows = server.federation.streams()
        assert {(r["direction"], r["domain"], r["auth"]) for r in rows} == {
            ("in", THEIRS, "EXTERNAL"),
            ("out", THEIRS, "EXTERNAL"),
        }
        assert all(r["certificate"] == "verified" for r in rows)
        alice.close()
        carol.close()


async def test_a_prosody_off_the_allowlist_is_refused_both_ways(tmp_path: Path) -> None:
    async with federated(tmp_path, allow_prosody=False) as (server, prosody):
        alice = await ours_login(server, "alice")
        carol = await prosody_login(prosody, "carol")
        await alice.send(f"<message to='carol@{THEIRS}' id='m1'><body>no</body></message>")
        got = await alice.read_until(rb"id='m1'.*?</message>", timeout=20)
        assert b"<not-allowed" in got  # no DNS, no connection
        await carol.send(f"<message to='alice@{OURS}' id='m2'><body>no</body></message>")
        got = await carol.read_until(rb"id=.m2.*?</message>", timeout=30)
        assert b"type='error'" in got or b'type="error"' in got
        assert b"no</body>" not in alice.buffer
        assert not server.federation.inbound
        alice.close()
        carol.close()
