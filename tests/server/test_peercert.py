"""s2s peer certificates over real TLS handshakes on loopback, both directions: the handshake
always finishes, and the verdict afterwards says whether the peer's certificate authenticates
its domain, or why not (XEP-0178, RFC 6125)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest
from vines_server import certs
from vines_server.net.peercert import Failure, TrustStore, Verdict, verify_peer
from vines_server.net.s2stls import S2STLSSession, s2s_client_context, s2s_server_context

from tests.support.peers import (
    PEER,
    US,
    FederationPKI,
    make_federation_pki,
    pump_handshake,
    pump_read,
    pump_send,
)

DEADLINE = 15  # seconds; a hang fails instead of blocking the suite


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> FederationPKI:
    return make_federation_pki(tmp_path_factory.mktemp("federation"))


@pytest.fixture(scope="module")
def trust(fed: FederationPKI) -> TrustStore:
    return TrustStore.load(fed.ca_file)


def peer_client_context(
    fed: FederationPKI, name: str, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """The remote server's side of an inbound stream: Python's ssl, presenting `name`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(*fed.pair(name))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


async def inbound(
    fed: FederationPKI, trust: TrustStore, name: str, max_version: ssl.TLSVersion | None = None
) -> tuple[Verdict, str]:
    """A peer presenting certificate `name` connects to our s2s TLS; returns our verdict and
    the TLS version, after application data went both ways (the handshake finished)."""
    ctx = s2s_server_context({US: fed.pair("ours")})
    verdicts: asyncio.Queue[tuple[Verdict, str]] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = S2STLSSession(ctx, server_side=True)
        try:
            early = await pump_handshake(session, reader, writer)
            await pump_read(session, reader, writer, b"<ping/>", early)
            await pump_send(session, writer, b"<pong/>")
            info = session.info()
            assert info.server_name == US
            verdicts.put_nowait((verify_peer(session.peer_chain(), PEER, trust), info.version))
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=peer_client_context(fed, name, max_version), server_hostname=US
        )
        writer.write(b"<ping/>")
        assert await reader.readuntil(b"<pong/>") == b"<pong/>"
        writer.close()
        return await verdicts.get()


async def outbound(fed: FederationPKI, trust: TrustStore, name: str) -> tuple[Verdict, bytes]:
    """We connect to a peer server presenting `name`; returns our verdict and the certificate
    the peer saw from us (it requires one, verified against the test root)."""
    peer_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    peer_ctx.load_cert_chain(*fed.pair(name))
    peer_ctx.verify_mode = ssl.CERT_REQUIRED
    peer_ctx.load_verify_locations(cafile=fed.ca_file)
    seen: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"<ping/>")
        seen.put_nowait(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        writer.write(b"<pong/>")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=peer_ctx)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        session = S2STLSSession(
            s2s_client_context(*fed.pair("ours")), server_side=False, server_hostname=PEER
        )
        try:
            early = await pump_handshake(session, reader, writer)
            await pump_send(session, writer, b"<ping/>")
            await pump_read(session, reader, writer, b"<pong/>", early)
            verdict = verify_peer(session.peer_chain(), PEER, trust)
        finally:
            writer.close()
        return verdict, await seen.get()


CASES = [
    # (certificate the peer presents, expected failure, expected identity)
    ("good", None, f"DNS-ID {PEER}"),
    ("server_only", None, f"DNS-ID {PEER}"),
    ("intermediate", None, f"DNS-ID {PEER}"),
    ("srv_only", None, f"SRV-ID _xmpp-server.{PEER}"),
    ("xmpp_only", None, f"XmppAddr {PEER}"),
    ("selfsigned", Failure.NOT_TRUSTED, f"DNS-ID {PEER}"),
    ("incomplete", Failure.NOT_TRUSTED, f"DNS-ID {PEER}"),
    ("wrongname", Failure.WRONG_NAME, ""),
    ("cn_only", Failure.WRONG_NAME, ""),  # the CN is never an identity
    ("expired", Failure.EXPIRED, f"DNS-ID {PEER}"),
]


@pytest.mark.parametrize(("name", "failure", "identity"), CASES)
async def test_inbound_handshake_finishes_and_verdict_is_right(fed, trust, name, failure, identity):
    verdict, version = await asyncio.wait_for(inbound(fed, trust, name), DEADLINE)
    assert version in ("TLSv1.2", "TLSv1.3")
    assert verdict.failure is failure, verdict
    assert verdict.identity == identity
    assert verdict.verified is (failure is None)


@pytest.mark.parametrize(("name", "failure", "identity"), CASES)
async def test_outbound_verdict_is_right_and_we_present_our_certificate(
    fed, trust, name, failure, identity
):
    verdict, ours = await asyncio.wait_for(outbound(fed, trust, name), DEADLINE)
    assert verdict.failure is failure, verdict
    assert verdict.identity == identity
    assert certs.dns_names(certs.load_certificate(ours)) == [US]


async def test_inbound_over_tls12_only_peer(fed, trust):
    """A peer limited to TLS 1.2 (the client certificate inside the handshake) is judged
    alike."""
    tls12 = ssl.TLSVersion.TLSv1_2
    verdict, version = await asyncio.wait_for(inbound(fed, trust, "selfsigned", tls12), DEADLINE)
    good, _ = await asyncio.wait_for(inbound(fed, trust, "server_only", tls12), DEADLINE)
    assert version == "TLSv1.2"
    assert verdict.reason == "certificate not trusted" and good.verified


async def test_stdlib_cert_optional_aborts_where_we_finish(fed):
    """Why s2stls exists: Python's ssl with CERT_OPTIONAL aborts the handshake on a
    serverAuth-only client certificate ("unsuitable certificate purpose"), where
    `test_inbound_handshake_finishes_and_verdict_is_right[server_only-...]` finishes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*fed.pair("ours"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=fed.ca_file)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the client then learns it in the handshake
    server_errors: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: server_errors.append(str(context)))
    try:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        async with server:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await asyncio.wait_for(
                    asyncio.open_connection(
                        "127.0.0.1",
                        port,
                        ssl=peer_client_context(fed, "server_only"),
                        server_hostname=US,
                    ),
                    DEADLINE,
                )
    finally:
        loop.set_exception_handler(None)


def test_verdict_reasons_read_like_the_issue():
    assert Verdict(PEER, Failure.WRONG_NAME).reason == f"not valid for {PEER}"
    assert Verdict(PEER, Failure.NOT_TRUSTED).reason == "certificate not trusted"
    assert Verdict(PEER, Failure.EXPIRED).reason == "certificate expired"
    assert Verdict(PEER).reason == "" and Verdict(PEER).verified


def test_no_certificate_is_a_failure(trust):
    assert verify_peer([], PEER, trust).reason == "no certificate"


def test_not_yet_valid(trust, fed):
    cert = certs.load_certificate(fed.pair("good")[0])
    verdict = verify_peer([cert], PEER, trust, now=cert.not_valid_before_utc - dt.timedelta(1))
    assert verdict.failure is Failure.NOT_YET_VALID


def test_without_ca_file_a_test_root_is_not_trusted(fed, tmp_path):
    """The ca_file is what makes the test root an anchor: the system store alone refuses."""
    alone = TrustStore.load(None)
    cert = certs.load_certificate(fed.pair("good")[0])
    assert verify_peer([cert], PEER, alone).failure is Failure.NOT_TRUSTED
    assert verify_peer([cert], PEER, TrustStore.load(fed.ca_file, system=False)).verified


def test_ca_file_without_certificates_is_refused(tmp_path: Path):
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"empty\.pem holds no PEM certificate"):
        TrustStore.load(empty)


async def test_two_of_our_servers_direct_tls_both_verify_each_other(fed, trust):
    """Both ends ours (XEP-0368 direct TLS, ALPN xmpp-server): each verifies the other's
    serverAuth-only certificate, the negotiated facts are reported, close_notify arrives."""
    server_ctx = s2s_server_context({PEER: fed.pair("server_only")}, alpn=["xmpp-server"])
    done: asyncio.Queue[tuple[Verdict, object]] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = S2STLSSession(server_ctx, server_side=True)
        early = await pump_handshake(session, reader, writer)
        await pump_read(session, reader, writer, b"<ping/>", early)
        await pump_send(session, writer, b"<pong/>")
        while not session.peer_closed:
            session.receive(await reader.read(65536))
        done.put_nowait((verify_peer(session.peer_chain(), US, trust), session.info()))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = S2STLSSession(
            s2s_client_context(*fed.pair("ours"), alpn=["xmpp-server"]),
            server_side=False,
            server_hostname=PEER,
        )
        early = await asyncio.wait_for(pump_handshake(client, reader, writer), DEADLINE)
        await pump_send(client, writer, b"<ping/>")
        await asyncio.wait_for(pump_read(client, reader, writer, b"<pong/>", early), DEADLINE)
        assert verify_peer(client.peer_chain(), PEER, trust).identity == f"DNS-ID {PEER}"
        info = client.info()
        assert info.alpn == "xmpp-server" and info.version in ("TLSv1.2", "TLSv1.3")
        client.close()
        writer.write(client.outgoing())
        inbound_verdict, server_info = await asyncio.wait_for(done.get(), DEADLINE)
        writer.close()
    assert inbound_verdict.verified and inbound_verdict.identity == f"DNS-ID {US}"
    assert server_info.server_name == PEER and server_info.alpn == "xmpp-server"
    assert server_info.cipher


async def test_sni_picks_the_hosted_domain_certificate(fed, trust):
    """Inbound, the certificate we present is the one of the domain the peer asks for."""
    ctx = s2s_server_context({US: fed.pair("ours"), PEER: fed.pair("good")})
    names: asyncio.Queue[str | None] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = S2STLSSession(ctx, server_side=True)
        early = await pump_handshake(session, reader, writer)
        await pump_read(session, reader, writer, b"<ping/>", early)
        await pump_send(session, writer, b"<pong/>")
        names.put_nowait(session.info().server_name)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=peer_client_context(fed, "good"), server_hostname=PEER
        )
        writer.write(b"<ping/>")
        await asyncio.wait_for(reader.readuntil(b"<pong/>"), DEADLINE)
        presented = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        assert await names.get() == PEER
    assert certs.dns_names(certs.load_certificate(presented)) == [PEER]


def test_garbage_instead_of_a_client_hello_is_a_tls_error(fed):
    ctx = s2s_server_context({US: fed.pair("ours")})
    plaintext = S2STLSSession(ctx, server_side=True)
    with pytest.raises(ssl.SSLError):  # an XML stream header where TLS was expected
        plaintext.receive(b"<?xml version='1.0'?><stream:stream to='vines.example'>" * 4)
    assert not plaintext.handshake_done and plaintext.peer_chain() == []
    broken = S2STLSSession(ctx, server_side=True)
    with pytest.raises(ssl.SSLError):  # a handshake record that holds no ClientHello
        broken.receive(b"\x16\x03\x01\x00\x05hello")
    assert broken.outgoing()[:1] == b"\x15"  # the alert, for the caller to flush


def test_eof_during_the_handshake_is_a_truncation(fed):
    client = S2STLSSession(
        s2s_client_context(*fed.pair("ours")), server_side=False, server_hostname=PEER
    )
    assert client.outgoing()[:1] == b"\x16"  # the ClientHello is queued at once
    with pytest.raises(ssl.SSLError):
        client.receive_eof()
