"""Two instances of our server federate over real loopback sockets and real TLS: EXTERNAL with
certificates from a CA both trust, a message across, and the bounces for a peer off the
allowlist and for one that cannot be reached."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import tomli_w
from vines_server import certs, config
from vines_server.config import FederationConfig
from vines_server.server import Server
from vines_server.xmpp import ns
from vines_server.xmpp.dialback import make_key
from vines_server.xmpp.sasl.credentials import derive_all

from tests.server.test_hostile import LAUGHS
from tests.support.adhoc import admin, run
from tests.support.ports import free_port
from tests.support.xmpp import (
    PASSWORD,
    PKI,
    TEST_ITERATIONS,
    Harness,
    RawClient,
    disconnect,
    slixmpp_client,
)

A, B = "a.test", "b.test"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("s2s-pki")
    ca_cert, ca_key = certs.make_ca("s2s test CA")
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(certs.serialization.Encoding.PEM))
    pairs = {}
    variants = {
        A: ([A], {"issuer": (ca_cert, ca_key)}),
        B: ([B], {"issuer": (ca_cert, ca_key)}),
        "a-selfsigned": ([A], {}),
        "a-server-only": ([A], {"issuer": (ca_cert, ca_key), "client_auth": False}),
    }
    for name, (domains, options) in variants.items():
        cert, key = certs.make_certificate(domains, **options)
        pairs[name] = (directory / f"{name}.crt", directory / f"{name}.key")
        certs.write_pem(cert, key, *pairs[name])
    return ca_file, pairs


def make_config(
    tmp: Path,
    domain: str,
    ca,
    s2s_port: int,
    peer: str,
    peer_port: int,
    allow: bool = True,
    cert_name: str | None = None,
    dialback: bool = False,
    **sections,
):
    ca_file, pairs = ca
    cert, key = pairs[cert_name or domain]
    raw = {
        "server": {"admins": [f"admin@{domain}"]},
        "domains": {domain: {"certificate": str(cert), "key": str(key)}},
        "listeners": {
            "bind": ["127.0.0.1"],
            "c2s_port": 0,
            "c2s_direct_tls_port": False,
            "s2s_port": s2s_port,
        },
        "storage": {"backend": "sqlite", "path": str(tmp / f"{domain}.sqlite")},
        "limits": {"pbkdf2_iterations": TEST_ITERATIONS},
        "federation": {
            "allow": [peer] if allow else [],
            "ca_file": str(ca_file),
            "peers": {peer: {"host": "127.0.0.1", "port": peer_port, "dialback": dialback}},
        },
    }
    raw.update(sections)
    path = tmp / f"{domain}.toml"
    path.write_text(tomli_w.dumps(raw))  # for reload
    return config.parse(raw, path)


@asynccontextmanager
async def two_servers(
    tmp: Path, ca, b_allows_a: bool = True, a_cert: str | None = None, dialback: bool = False
):
    pa, pb = free_port(), free_port()
    a = Server(make_config(tmp, A, ca, pa, B, pb, cert_name=a_cert, dialback=dialback))
    b = Server(make_config(tmp, B, ca, pb, A, pa, allow=b_allows_a, dialback=dialback))
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def login(
    server: Server, ca, local: str, domain: str, anchor: Path | None = None
) -> RawClient:
    jid = f"{local}@{domain}"
    await server.storage.create_account(jid, derive_all(PASSWORD, TEST_ITERATIONS))
    port = next(li.port for li in server.listening if li.kind == "c2s-starttls")
    raw = await RawClient.connect(port, anchor or ca[0])
    await raw.login(local, PASSWORD, to=domain)
    await raw.send("<presence/>")  # available: messages to the bare JID reach this resource
    return raw


async def test_a_message_crosses_with_external_both_ways(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca) as (a, b):
        alice = await login(a, ca, "alice", A)
        bob = await login(b, ca, "bob", B)
        await alice.send(f"<message to='bob@{B}' id='m1'><body>hello bob</body></message>")
        got = await bob.read_until(rb"</message>", timeout=10)
        assert b"hello bob" in got and f"from='alice@{A}/".encode() in got
        await bob.send(f"<message to='alice@{A}' id='m2'><body>hello alice</body></message>")
        got = await alice.read_until(rb"</message>", timeout=10)
        assert b"hello alice" in got
        (link,) = [p.link for p in a.federation.peers.values() if p.link is not None]
        assert link.info["mechanism"] == "EXTERNAL" and link.info["certificate"] == "verified"
        alice.close()
        bob.close()


async def test_a_peer_off_the_allowlist_is_refused_and_the_sender_learns_why(
    tmp_path: Path, ca
) -> None:
    async with two_servers(tmp_path, ca, b_allows_a=False) as (a, b):
        alice = await login(a, ca, "alice", A)
        await alice.send(f"<message to='bob@{B}' id='m1'><body>hi</body></message>")
        got = await alice.read_until(rb"</message>", timeout=10)
        # b.test refuses the stream (policy-violation): the message bounces, nothing crosses
        assert b"type='error'" in got and b"remote-server-timeout" in got
        bob = await login(b, ca, "bob", B)
        await bob.send(f"<message to='alice@{A}' id='m2'><body>hi</body></message>")
        got = await bob.read_until(rb"</message>", timeout=10)
        assert b"<not-allowed" in got  # b.test does not even try: no DNS, no connection
        alice.close()
        bob.close()


async def test_an_unreachable_peer_bounces_remote_server_not_found(tmp_path: Path, ca) -> None:
    closed = free_port()  # nothing listens there
    cfg = make_config(tmp_path, A, ca, free_port(), B, closed)
    a = Server(cfg)
    await a.start()
    try:
        alice = await login(a, ca, "alice", A)
        await alice.send(f"<message to='bob@{B}' id='m1'><body>hi</body></message>")
        got = await alice.read_until(rb"</message>", timeout=10)
        assert b"<remote-server-not-found" in got and b"type='cancel'" in got
        # within the bounce period the next one bounces at once, without a new attempt
        peer = a.federation.peers[(A, B)]
        attempt = peer.connecting
        await alice.send(f"<message to='bob@{B}' id='m2'><body>again</body></message>")
        got = await alice.read_until(rb"</message>", timeout=10)
        assert b"id='m2'" in got and b"<remote-server-not-found" in got
        assert peer.connecting is attempt
        alice.close()
    finally:
        await a.stop()


def outbound_info(server: Server) -> dict:
    (link,) = [p.link for p in server.federation.peers.values() if p.link is not None]
    return link.info


async def test_an_untrusted_certificate_is_refused_without_dialback(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca, a_cert="a-selfsigned") as (a, b):
        alice = await login(a, ca, "alice", A, anchor=ca[1]["a-selfsigned"][0])
        await alice.send(f"<message to='bob@{B}' id='m1'><body>hi</body></message>")
        got = await alice.read_until(rb"</message>", timeout=10)
        assert b"type='error'" in got and b"remote-server-timeout" in got
        assert not [c for c in b.federation.inbound]
        alice.close()


async def test_an_untrusted_peer_that_opted_in_authenticates_with_dialback(
    tmp_path: Path, ca
) -> None:
    async with two_servers(tmp_path, ca, a_cert="a-selfsigned", dialback=True) as (a, b):
        alice = await login(a, ca, "alice", A, anchor=ca[1]["a-selfsigned"][0])
        bob = await login(b, ca, "bob", B)
        await alice.send(f"<message to='bob@{B}' id='m1'><body>over dialback</body></message>")
        got = await bob.read_until(rb"</message>", timeout=10)
        assert b"over dialback" in got
        assert outbound_info(a)["mechanism"] == "dialback"
        (inbound,) = b.federation.inbound
        assert inbound.info["mechanism"] == "dialback"
        assert inbound.info["certificate"] == "certificate not trusted"
        alice.close()
        bob.close()


async def test_a_server_auth_only_certificate_authenticates_with_external(
    tmp_path: Path, ca
) -> None:
    async with two_servers(tmp_path, ca, a_cert="a-server-only") as (a, b):
        alice = await login(a, ca, "alice", A)
        bob = await login(b, ca, "bob", B)
        await alice.send(f"<message to='bob@{B}' id='m1'><body>server auth</body></message>")
        assert b"server auth" in await bob.read_until(rb"</message>", timeout=10)
        (inbound,) = b.federation.inbound
        assert inbound.info["mechanism"] == "EXTERNAL"
        alice.close()
        bob.close()


async def test_a_blocklist_edit_closes_the_streams_and_refuses_at_once(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca) as (a, b):
        alice = await login(a, ca, "alice", A)
        bob = await login(b, ca, "bob", B)
        await alice.send(f"<message to='bob@{B}' id='m1'><body>before</body></message>")
        assert b"before" in await bob.read_until(rb"</message>", timeout=10)
        (inbound,) = b.federation.inbound

        await b.storage.create_account(f"admin@{B}", derive_all(PASSWORD, TEST_ITERATIONS))
        cert, key = ca[1][B]
        harness = Harness(b, PKI(tmp_path, ca[0], cert, key))
        boss = await slixmpp_client(harness, f"admin@{B}")
        boss.register_plugin("xep_0050")
        try:
            await run(boss, admin("edit-blacklist"), {"blacklistjids": [A]}, to=B)
        finally:
            await disconnect(boss)
        assert inbound.closing and not b.federation.inbound  # closed at once

        await bob.send(f"<message to='alice@{A}' id='m2'><body>after</body></message>")
        got = await bob.read_until(rb"id='m2'.*?</message>", timeout=10)
        assert b"<not-allowed" in got
        await alice.send(f"<message to='bob@{B}' id='m3'><body>after</body></message>")
        got = await alice.read_until(rb"id='m3'.*?</message>", timeout=10)
        assert b"type='error'" in got and b"after" not in bob.buffer
        alice.close()
        bob.close()


async def test_the_queue_bound_holds_and_a_silent_peer_bounces_remote_server_timeout(
    tmp_path: Path, ca
) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # a TCP peer that never answers the stream header

    mute = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = mute.sockets[0].getsockname()[1]
    cfg = make_config(tmp_path, A, ca, free_port(), B, port, deadlines={"negotiation": 1.0})
    a = Server(cfg)
    await a.start()
    try:
        a.federation.queue_limit = 3
        alice = await login(a, ca, "alice", A)
        for i in range(5):
            await alice.send(f"<message to='bob@{B}' id='q{i}'><body>{i}</body></message>")
        bounces = []
        for _ in range(5):
            bounces.append(await alice.read_until(rb"<message.*?</message>", timeout=10))
        by_id = {re.search(rb"id='(q[0-9])'", m).group(1).decode(): m for m in bounces}
        assert sorted(by_id) == ["q0", "q1", "q2", "q3", "q4"]  # nothing dropped
        for i in (3, 4):  # over the bound: at once, wait
            assert b"<resource-constraint" in by_id[f"q{i}"] and b"type='wait'" in by_id[f"q{i}"]
        for i in (0, 1, 2):  # queued, then the stream that existed timed out
            assert b"<remote-server-timeout" in by_id[f"q{i}"] and b"type='wait'" in by_id[f"q{i}"]
        assert accepted  # the stream existed: a TCP connection was made
        alice.close()
    finally:
        await a.stop()
        mute.close()
        for writer in accepted:
            writer.close()


async def test_subscription_and_presence_across_domains(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca) as (a, b):
        alice = await login(a, ca, "alice", A)
        bob = await login(b, ca, "bob", B)
        for client in (alice, bob):  # interested resources (RFC 6121 2.1.6) hear the answers
            await client.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
            await client.read_until(rb"id='r1'.*?</iq>|id='r1'[^>]*/>", timeout=10)
        await alice.send(f"<presence to='bob@{B}' type='subscribe'/>")
        got = await bob.read_until(rb"<presence[^>]*type='subscribe'[^>]*>", timeout=10)
        assert f"from='alice@{A}'".encode() in got
        await bob.send(f"<presence to='alice@{A}' type='subscribed'/>")
        # alice hears the approval, then bob's current presence (RFC 6121 3.1.5)
        await alice.read_until(rb"type='subscribed'", timeout=10)
        got = await alice.read_until(rf"<presence[^>]*from='bob@{B}/[^']*'".encode(), timeout=10)
        assert b"type=" not in got.rsplit(b"<presence", 1)[1]
        # bob goes away and comes back: alice sees both
        await bob.send("<presence type='unavailable'/>")
        got = await alice.read_until(rb"<presence[^>]*type='unavailable'[^>]*>", timeout=10)
        assert f"from='bob@{B}/".encode() in got
        alice.close()
        bob.close()


async def test_iq_ping_and_disco_across_domains(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca) as (a, _b):
        alice = await login(a, ca, "alice", A)
        await alice.send(f"<iq type='get' id='p1' to='{B}'><ping xmlns='urn:xmpp:ping'/></iq>")
        got = await alice.read_until(rb"id='p1'.*?(/>|</iq>)", timeout=10)
        assert b"type='result'" in got and f"from='{B}'".encode() in got
        disco = f"<iq type='get' id='d1' to='{B}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
        await alice.send(disco)
        got = await alice.read_until(rb"id='d1'.*?</iq>", timeout=10)
        assert b"type='result'" in got and b"urn:xmpp:ping" in got
        alice.close()


# ---- hostile inputs of the c2s suite, on the s2s port (a selection) ----------------------------

S2S_HEADER = (
    f"<?xml version='1.0'?><stream:stream to='{B}' from='{A}' version='1.0' "
    "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
)


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        (LAUGHS, "restricted-xml"),
        (S2S_HEADER + "<!-- a comment -->", "restricted-xml"),
        (S2S_HEADER + "<?pi data?>", "restricted-xml"),
        ("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n", "not-well-formed"),
        (
            S2S_HEADER.replace("version='1.0'", f"version='1.0' pad='{'x' * 9000}'"),
            "policy-violation",
        ),
        (
            S2S_HEADER + f"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls' pad='{'x' * 9000}'/>",
            "policy-violation",
        ),
        (
            S2S_HEADER + f"<message from='x@{A}' to='y@{B}'><body>hi</body></message>",
            "policy-violation",
        ),
        (
            S2S_HEADER
            + f"<db:result xmlns:db='jabber:server:dialback' from='{A}' to='{B}'>k</db:result>",
            "policy-violation",
        ),
        (S2S_HEADER.replace(f"from='{A}'", "from='evil.test'"), "policy-violation"),
    ],
    ids=[
        "laughs",
        "comment",
        "pi",
        "http",
        "huge-header",
        "huge-element",
        "stanza-before-tls",
        "dialback-before-tls",
        "off-allowlist",
    ],
)
async def test_hostile_input_on_the_s2s_port(
    tmp_path: Path, ca, payload: str, condition: str
) -> None:
    async with two_servers(tmp_path, ca) as (_a, b):
        port = next(li.port for li in b.listening if li.kind == "s2s")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload.encode())
        data = b""
        while not data.endswith(b"</stream:stream>"):
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            if not chunk:
                break
            data += chunk
        assert f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'".encode() in data, data
        assert data.endswith(b"</stream:stream>")
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        writer.close()
        # still serving
        bob = await login(b, ca, "bob", B)
        bob.close()


async def test_no_s2s_listener_while_federation_is_not_configured(tmp_path: Path, ca) -> None:
    cfg = make_config(tmp_path, A, ca, free_port(), B, free_port(), allow=False)
    closed = Server(dataclasses.replace(cfg, federation=FederationConfig()))
    await closed.start()
    try:
        assert closed.federation is None and closed.router.remote is None
        assert not [li for li in closed.listening if li.kind.startswith("s2s")]
    finally:
        await closed.stop()


# ---- dialback regressions over the wire (XEP-0220; the 2012 advisory; CVE-2016-0756) -------


class RawPeer:
    """A hand-driven server-to-server stream to b.test claiming to be a.test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buffer = reader, writer, b""

    @classmethod
    async def connect(cls, server: Server, ca) -> RawPeer:
        port = next(li.port for li in server.listening if li.kind == "s2s")
        peer = cls(*await asyncio.open_connection("127.0.0.1", port))
        await peer.open()
        peer.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await peer.read_until(rb"<proceed[^>]*/>")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.load_cert_chain(*ca[1]["a-selfsigned"])
        await peer.writer.start_tls(ctx, server_hostname=B)
        peer.stream_id = re.search(rb"id='([^']+)'", await peer.open()).group(1).decode()
        return peer

    async def open(self) -> bytes:
        self.buffer = b""
        self.send(
            f"<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
            f"xmlns:stream='http://etherx.jabber.org/streams' to='{B}' from='{A}' version='1.0'>"
        )
        return await self.read_until(rb"</stream:features>")

    def send(self, data: str) -> None:
        self.writer.write(data.encode())

    async def read_until(self, pattern: bytes, timeout: float = 10) -> bytes:
        while not (match := re.search(pattern, self.buffer, re.S)):
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            assert chunk, f"closed; got {self.buffer[-500:]!r}"
            self.buffer += chunk
        out, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
        return out


MESSAGE_FROM_A = f"<message from='alice@{A}' to='bob@{B}'><body>forged</body></message>"


async def test_an_uncorrelated_dialback_answer_authenticates_nothing(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca, a_cert="a-selfsigned", dialback=True) as (_a, b):
        peer = await RawPeer.connect(b, ca)
        # "valid" answers nobody asked for (the 2012 XSF advisory): ignored
        peer.send(f"<db:result type='valid' from='{A}' to='{B}'/>")
        peer.send(f"<db:verify type='valid' from='{A}' to='{B}' id='{peer.stream_id}'/>")
        peer.send(MESSAGE_FROM_A)
        got = await peer.read_until(rb"</stream:stream>")
        assert b"<not-authorized" in got  # still unauthenticated: "authenticate first"
        assert not b.federation.inbound


async def test_a_key_for_another_domain_pair_is_invalid(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca, a_cert="a-selfsigned", dialback=True) as (a, b):
        peer = await RawPeer.connect(b, ca)
        # a genuine a.test key, but for the pair (c.test, a.test): b.test must not accept it
        key = make_key(a.federation.settings.secret, "c.test", A, peer.stream_id)
        peer.send(f"<db:result from='{A}' to='{B}'>{key}</db:result>")
        got = await peer.read_until(rb"</stream:stream>")
        assert b"type='invalid'" in got and b"<not-authorized" in got
        # and the right key for this pair and stream is valid (the check is not just "no")
        peer = await RawPeer.connect(b, ca)
        key = make_key(a.federation.settings.secret, B, A, peer.stream_id)
        peer.send(f"<db:result from='{A}' to='{B}'>{key}</db:result>")
        assert b"type='valid'" in await peer.read_until(rb"<result[^>]*type=[^>]*/>")


async def test_a_replayed_stream_id_is_not_verified_twice(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca, a_cert="a-selfsigned", dialback=True) as (a, b):
        peer = await RawPeer.connect(b, ca)
        key = make_key(a.federation.settings.secret, B, A, peer.stream_id)
        peer.send(f"<db:result from='{A}' to='{B}'>{key}</db:result>")
        peer.send(f"<db:result from='{A}' to='{B}'>{key}</db:result>")
        got = await peer.read_until(rb"not-acceptable.*?</result>")
        assert b"type='error'" in got


async def test_a_reload_that_drops_a_peer_closes_its_streams(tmp_path: Path, ca) -> None:
    async with two_servers(tmp_path, ca) as (a, b):
        alice = await login(a, ca, "alice", A)
        bob = await login(b, ca, "bob", B)
        await alice.send(f"<message to='bob@{B}' id='m1'><body>before</body></message>")
        assert b"before" in await bob.read_until(rb"</message>", timeout=10)
        (inbound,) = b.federation.inbound
        ports = b.config.listeners.s2s_port, b.config.federation.peer(A).port
        make_config(tmp_path, B, ca, ports[0], A, ports[1], allow=False)  # rewrites b.test.toml
        await b.reload()
        assert inbound.closing and not b.federation.inbound
        await bob.send(f"<message to='alice@{A}' id='m2'><body>after</body></message>")
        assert b"<not-allowed" in await bob.read_until(rb"id='m2'.*?</message>", timeout=10)
        alice.close()
        bob.close()


async def test_direct_tls_s2s_port_offers_external_to_a_verified_peer(tmp_path: Path, ca) -> None:
    pa, direct = free_port(), free_port()
    listeners = {
        "bind": ["127.0.0.1"],
        "c2s_port": 0,
        "c2s_direct_tls_port": False,
        "s2s_port": free_port(),
        "s2s_direct_tls_port": direct,
    }
    b = Server(make_config(tmp_path, B, ca, 0, A, pa, listeners=listeners))
    await b.start()
    try:
        ctx = ssl.create_default_context(cafile=str(ca[0]))
        ctx.set_alpn_protocols(["xmpp-server"])
        ctx.load_cert_chain(*ca[1][A])
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", direct, ssl=ctx, server_hostname=B
        )
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "xmpp-server"
        peer = RawPeer(reader, writer)
        features = await peer.open()
        assert b"<mechanism>EXTERNAL</mechanism>" in features and b"starttls" not in features
        writer.close()
    finally:
        await b.stop()
