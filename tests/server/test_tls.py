"""TLS: certificate generation, SSL contexts, and the lean TLSSession over real loopback sockets.

The echo server below is also the worked example of `net/transport.py`: a plain
`asyncio.Protocol` speaking TLS through `TLSSession` (via `StreamTLS`), either STARTTLS-style
(one plaintext line `STARTTLS`, answer `PROCEED`, then TLS) or direct TLS (XEP-0368).
Clients are the standard library's `ssl` sockets (run in a thread) unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import shutil
import socket
import ssl
import stat
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from vines_server import certs
from vines_server.net.tls import (
    client_context,
    server_context,
    tls_server_end_point,
)
from vines_server.net.transport import StreamTLS

pytestmark = pytest.mark.timeout(60)

DOMAIN_A = "alpha.example"
DOMAIN_B = "beta.example"
IO_TIMEOUT = 10


# -- fixtures -------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_file: Path
    domains: dict[str, tuple[Path, Path]]
    ca: tuple[x509.Certificate, certs.PrivateKey]


def _issue(ca, directory: Path, domain: str, **kwargs) -> tuple[Path, Path]:
    cert, key = certs.make_certificate([domain], issuer=ca, **kwargs)
    cert_path, key_path = directory / f"{domain}.crt", directory / f"{domain}.key"
    certs.write_pem(cert, key, cert_path, key_path)
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = certs.make_ca("vinesctl test CA")
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca[0].public_bytes(Encoding.PEM))
    domains = {
        DOMAIN_A: _issue(ca, directory, DOMAIN_A),
        DOMAIN_B: _issue(ca, directory, DOMAIN_B, key_type="rsa"),
    }
    return Pki(ca_file=ca_file, domains=domains, ca=ca)


class EchoServerProtocol(asyncio.Protocol):
    """Echo over TLS; `direct` starts TLS at once, otherwise after a plaintext STARTTLS line."""

    def __init__(self, server: EchoServer) -> None:
        self.server = server
        self.plain = b""
        self.io: StreamTLS | None = None
        self.error: ssl.SSLError | None = None
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.io = StreamTLS(transport)
        self.server.connections.append(self)
        if self.server.direct:
            self.io.start_tls(self.server.ctx)

    def data_received(self, data: bytes) -> None:
        assert self.io is not None
        try:
            app = self.io.data_received(data)
            if not self.io.tls_active:
                self.plain += app
                if b"\n" not in self.plain:
                    return
                line, rest = self.plain.split(b"\n", 1)
                self.plain = b""
                if line != b"STARTTLS":
                    self.io.write(b"ERROR\n")
                    self.io.close()
                    return
                self.io.write(b"PROCEED\n")
                # Bytes after the command go to TLS, never back to the plaintext parser.
                app = self.io.start_tls(self.server.ctx, initial=rest)
        except ssl.SSLError as exc:
            self.error = exc
            self.io.close(notify=False)
            return
        if app:
            self.received += app
            self.io.write(app)
        if self.io.peer_closed:
            self.io.close()

    def eof_received(self) -> bool:
        assert self.io is not None
        try:
            self.io.eof_received()
        except ssl.SSLError as exc:
            self.error = exc
        return False


@dataclass
class EchoServer:
    ctx: ssl.SSLContext
    direct: bool
    port: int = 0
    connections: list[EchoServerProtocol] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> EchoServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: EchoServerProtocol(self), "127.0.0.1", 0, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        for conn in self.connections:
            if conn.io is not None:
                conn.io.abort()
        self.server.close()
        await self.server.wait_closed()

    async def last(self) -> EchoServerProtocol:
        """The most recent connection, once its handshake is done or it failed."""
        for _ in range(500):
            if self.connections:
                conn = self.connections[-1]
                if conn.error is not None or (conn.io and conn.io.handshake_done):
                    return conn
            await asyncio.sleep(0.01)
        raise AssertionError("no connection finished its handshake")


@pytest.fixture
async def make_server():
    started: list[EchoServer] = []

    async def factory(ctx: ssl.SSLContext, *, direct: bool) -> EchoServer:
        server = await EchoServer(ctx, direct).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        await server.stop()


@dataclass
class ClientResult:
    version: str
    cipher: str
    alpn: str | None
    peer_der: bytes
    tls_unique: bytes | None
    echoed: bytes
    has_ticket: bool


def _ssl_client(
    port: int,
    ctx: ssl.SSLContext,
    *,
    server_hostname: str | None,
    starttls: bool,
    payload: bytes = b"hello over tls\n",
) -> ClientResult:
    """A blocking standard-library TLS client (run it in a thread)."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        if starttls:
            raw.sendall(b"STARTTLS\n")
            answer = b""
            while not answer.endswith(b"\n"):
                byte = raw.recv(1)
                if not byte:
                    raise ConnectionError("closed before PROCEED")
                answer += byte
            assert answer == b"PROCEED\n"
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            tls.sendall(payload)
            echoed = b""
            while len(echoed) < len(payload):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                echoed += chunk
            version = tls.version()
            result = ClientResult(
                version=version or "",
                cipher=tls.cipher()[0],
                alpn=tls.selected_alpn_protocol(),
                peer_der=tls.getpeercert(binary_form=True),
                tls_unique=tls.get_channel_binding("tls-unique") if version == "TLSv1.2" else None,
                echoed=echoed,
                has_ticket=bool(tls.session and tls.session.has_ticket),
            )
            tls.unwrap()
            return result


async def ssl_client(port: int, ctx: ssl.SSLContext, **kwargs) -> ClientResult:
    return await asyncio.wait_for(
        asyncio.to_thread(_ssl_client, port, ctx, **kwargs), timeout=IO_TIMEOUT * 2
    )


def _sha256(der: bytes) -> bytes:
    return hashlib.sha256(der).digest()


# -- certificates ---------------------------------------------------------------------------


def test_certificate_sans_carry_xmpp_names() -> None:
    cert, key = certs.make_certificate(["example.org", "muc.example.org"])
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["example.org", "muc.example.org"]
    others = {(o.type_id.dotted_string, o.value) for o in san.get_values_for_type(x509.OtherName)}
    # id-on-xmppAddr holds a DER UTF8String (tag 0x0c), SRVName an IA5String (tag 0x16).
    assert ("1.3.6.1.5.5.7.8.5", b"\x0c\x0bexample.org") in others
    assert ("1.3.6.1.5.5.7.8.7", b"\x16\x18_xmpp-client.example.org") in others
    assert certs.xmpp_addrs(cert) == ["example.org", "muc.example.org"]
    assert certs.srv_names(cert) == [
        "_xmpp-client.example.org",
        "_xmpp-server.example.org",
        "_xmpp-client.muc.example.org",
        "_xmpp-server.muc.example.org",
    ]
    assert cert.issuer == cert.subject  # self-signed without an issuer


def test_certificate_variants_for_tests_and_diagnostics() -> None:
    ca = certs.make_ca("Test CA", key_type="rsa")
    assert ca[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    now = dt.datetime.now(dt.UTC)
    expired, _ = certs.make_certificate(
        ["old.example"],
        issuer=ca,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    assert expired.not_valid_after_utc < now
    assert expired.issuer == ca[0].subject
    ca[0].public_key().verify(
        expired.signature,
        expired.tbs_certificate_bytes,
        padding.PKCS1v15(),
        expired.signature_hash_algorithm,
    )

    bare, _ = certs.make_certificate(["plain.example"], xmpp_addr=False, srv_names=False)
    assert certs.dns_names(bare) == ["plain.example"]
    assert certs.xmpp_addrs(bare) == [] and certs.srv_names(bare) == []

    rsa_cert, rsa_key = certs.make_certificate(["rsa.example"], key_type="rsa")
    assert rsa_key.key_size == 2048
    assert isinstance(rsa_cert.signature_hash_algorithm, hashes.SHA256)

    idn, _ = certs.make_certificate(["münchen.example"])
    assert certs.dns_names(idn) == ["xn--mnchen-3ya.example"]
    assert certs.xmpp_addrs(idn) == ["münchen.example"]

    with pytest.raises(ValueError):
        certs.make_certificate(["x.example"], key_type="ed25519")  # type: ignore[arg-type]


def test_key_file_mode_0600_and_ensure_is_idempotent(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not expose the key
    try:
        cert_path, key_path = certs.ensure_domain_certificate("localhost", tmp_path / "certs")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
    first = cert_path.read_bytes()
    cert = certs.load_certificate(cert_path)
    assert certs.dns_names(cert) == ["localhost"]
    assert certs.xmpp_addrs(cert) == ["localhost"]
    # A second call keeps the existing pair (an administrator may have replaced it).
    assert certs.ensure_domain_certificate("localhost", tmp_path / "certs") == (cert_path, key_path)
    assert cert_path.read_bytes() == first
    # The pair loads into a server context.
    server_context({"localhost": (cert_path, key_path)})

    # write_pem over an existing world-readable file still ends at 0600.
    other_key = tmp_path / "other.key"
    other_key.write_text("old")
    other_key.chmod(0o644)
    c, k = certs.make_certificate(["other.example"])
    certs.write_pem(c, k, tmp_path / "other.crt", other_key)
    assert stat.S_IMODE(other_key.stat().st_mode) == 0o600


def test_end_point_hash_follows_signature_hash() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "h.example")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    sha384 = (
        builder.public_key(key.public_key()).sign(key, hashes.SHA384()).public_bytes(Encoding.DER)
    )
    assert tls_server_end_point(sha384) == hashlib.sha384(sha384).digest()

    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed = builder.public_key(ed_key.public_key()).sign(ed_key, None).public_bytes(Encoding.DER)
    with pytest.raises(ValueError):
        tls_server_end_point(ed)

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_512 = builder.public_key(rsa_key.public_key()).sign(rsa_key, hashes.SHA512())
    der = rsa_512.public_bytes(Encoding.DER)
    assert tls_server_end_point(der) == hashlib.sha512(der).digest()
    # RSA-PSS names its hash in the parameters: the end point follows it there too
    pss = padding.PSS(padding.MGF1(hashes.SHA384()), padding.PSS.DIGEST_LENGTH)
    rsa_pss = builder.public_key(rsa_key.public_key()).sign(
        rsa_key, hashes.SHA384(), rsa_padding=pss
    )
    der = rsa_pss.public_bytes(Encoding.DER)
    assert tls_server_end_point(der) == hashlib.sha384(der).digest()
    for broken in (b"", b"\x30\x82", sha384[:-40], b"\x30\x03\x30\x01\x00"):
        with pytest.raises(ValueError):
            tls_server_end_point(broken)


def test_end_point_of_sha1_certificate_uses_sha256(tmp_path: Path) -> None:
    """RFC 5929: MD5 and SHA-1 become SHA-256 (cryptography refuses to sign with SHA-1)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a SHA-1 signed certificate")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-sha1", "-nodes", "-subj", "/CN=old.example", "-days", "1"),
            *("-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")),
        ],
        check=True,
        capture_output=True,
    )
    sha1 = certs.load_certificate(tmp_path / "c.pem")
    assert sha1.signature_hash_algorithm.name == "sha1"
    der = sha1.public_bytes(Encoding.DER)
    assert tls_server_end_point(der) == hashlib.sha256(der).digest()


def test_server_context_settings(pki: Pki) -> None:
    ctx = server_context(pki.domains)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    for flag in (ssl.OP_NO_COMPRESSION, ssl.OP_NO_RENEGOTIATION, ssl.OP_NO_TICKET):
        assert ctx.options & flag
    assert ctx.num_tickets == 0
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and all(n.startswith("ECDHE-") for n in tls12)
    assert not any(bad in n for n in tls12 for bad in ("CBC", "RC4", "DES", "NULL", "SHA1"))
    with pytest.raises(ValueError):
        server_context({})


# -- handshakes over real sockets -----------------------------------------------------------


async def test_starttls_handshake_and_echo(pki: Pki, make_server) -> None:
    server = await make_server(server_context(pki.domains), direct=False)
    client = client_context(pki.ca_file)
    result = await ssl_client(server.port, client, server_hostname=DOMAIN_A, starttls=True)
    assert result.echoed == b"hello over tls\n"
    assert result.version == "TLSv1.3"
    assert not result.has_ticket  # no TLS 1.3 session tickets
    conn = await server.last()
    info = conn.io.info()
    assert info.version == "TLSv1.3"
    assert info.server_name == DOMAIN_A
    assert info.alpn is None
    assert info.peer_cert is None
    assert conn.received == b"hello over tls\n"


async def test_direct_tls_negotiates_alpn(pki: Pki, make_server) -> None:
    server = await make_server(server_context(pki.domains, alpn=["xmpp-client"]), direct=True)
    client = client_context(pki.ca_file, alpn=["xmpp-client"])
    result = await ssl_client(server.port, client, server_hostname=DOMAIN_A, starttls=False)
    assert result.alpn == "xmpp-client"
    assert result.echoed == b"hello over tls\n"
    conn = await server.last()
    assert conn.io.info().alpn == "xmpp-client"


@pytest.mark.parametrize(
    ("sni", "expected"),
    [(DOMAIN_A, DOMAIN_A), (DOMAIN_B, DOMAIN_B), ("BETA.example.", DOMAIN_B)],
)
async def test_sni_picks_the_domain_certificate(pki: Pki, make_server, sni, expected) -> None:
    server = await make_server(server_context(pki.domains), direct=True)
    client = client_context(pki.ca_file)
    client.check_hostname = sni == expected  # verify the name when it is the canonical one
    result = await ssl_client(server.port, client, server_hostname=sni, starttls=False)
    presented = x509.load_der_x509_certificate(result.peer_der)
    assert certs.dns_names(presented) == [expected]
    expected_der = certs.load_certificate(pki.domains[expected][0]).public_bytes(Encoding.DER)
    assert result.peer_der == expected_der
    conn = await server.last()
    assert conn.io.info().server_name == expected


@pytest.mark.parametrize("sni", [None, "unknown.example"])
async def test_no_or_unknown_sni_gets_the_first_domain(pki: Pki, make_server, sni) -> None:
    server = await make_server(server_context(pki.domains), direct=True)
    client = client_context(pki.ca_file)
    client.check_hostname = False
    result = await ssl_client(server.port, client, server_hostname=sni, starttls=False)
    assert certs.dns_names(x509.load_der_x509_certificate(result.peer_der)) == [DOMAIN_A]
    assert (await server.last()).io.info().server_name == DOMAIN_A


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
async def test_old_tls_versions_are_refused(pki: Pki, make_server, version) -> None:
    server = await make_server(server_context(pki.domains), direct=True)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.minimum_version = getattr(ssl.TLSVersion, version)
            client.maximum_version = getattr(ssl.TLSVersion, version)
        client.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client really offer the old version
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"local OpenSSL cannot offer {version}: {exc}")
    with pytest.raises(ssl.SSLError) as caught:
        await ssl_client(server.port, client, server_hostname=DOMAIN_A, starttls=False)
    if "NO_PROTOCOLS_AVAILABLE" in str(caught.value) or "NO_CIPHERS" in str(caught.value):
        pytest.skip(f"local OpenSSL refuses to offer {version}: {caught.value}")
    # The server answered with a protocol_version alert and delivered no application data.
    assert "PROTOCOL_VERSION" in str(caught.value) or "UNSUPPORTED_PROTOCOL" in str(caught.value)
    conn = await server.last()
    assert conn.error is not None
    assert conn.received == b""
    assert not conn.io.handshake_done


async def test_client_certificate_for_s2s(pki: Pki, make_server, tmp_path: Path) -> None:
    """request_client_cert: the peer's certificate (verified by the CA) is in TLSInfo."""
    ctx = server_context(pki.domains, request_client_cert=True, client_cafile=pki.ca_file)
    server = await make_server(ctx, direct=True)
    peer_cert, peer_key = _issue(pki.ca, tmp_path, "peer.example")
    client = client_context(pki.ca_file)
    client.load_cert_chain(peer_cert, peer_key)
    await ssl_client(server.port, client, server_hostname=DOMAIN_A, starttls=False)
    conn = await server.last()
    presented = x509.load_der_x509_certificate(conn.io.info().peer_cert)
    assert certs.xmpp_addrs(presented) == ["peer.example"]

    # A client certificate from another CA fails the handshake.
    stranger = certs.make_certificate(["stranger.example"])
    certs.write_pem(*stranger, tmp_path / "s.crt", tmp_path / "s.key")
    client = client_context(pki.ca_file)
    client.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await ssl_client(server.port, client, server_hostname=DOMAIN_A, starttls=False)
    assert isinstance((await server.last()).error, ssl.SSLCertVerificationError)


async def test_plaintext_on_direct_tls_port_fails(pki: Pki, make_server) -> None:
    server = await make_server(server_context(pki.domains), direct=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"<?xml version='1.0'?><stream:stream to='alpha.example'>")
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), timeout=IO_TIMEOUT)  # until the server closes
    writer.close()
    assert b"<" not in reply  # at most a TLS alert record, never XMPP
    conn = await server.last()
    assert isinstance(conn.error, ssl.SSLError)
    assert conn.received == b""


# -- channel binding ------------------------------------------------------------------------


@pytest.mark.parametrize("domain", [DOMAIN_A, DOMAIN_B])  # ECDSA and RSA certificates
async def test_tls_server_end_point_matches_client(pki: Pki, make_server, domain) -> None:
    server = await make_server(server_context(pki.domains), direct=False)
    result = await ssl_client(
        server.port, client_context(pki.ca_file), server_hostname=domain, starttls=True
    )
    conn = await server.last()
    bindings = conn.io.channel_bindings()
    # What the client computes from the certificate it received (both are SHA-256 signed).
    assert bindings["tls-server-end-point"] == _sha256(result.peer_der)
    assert bindings["tls-server-end-point"] == tls_server_end_point(result.peer_der)
    assert "tls-unique" not in bindings  # TLS 1.3


async def test_tls_unique_only_on_tls12(pki: Pki, make_server) -> None:
    server = await make_server(server_context(pki.domains), direct=True)
    client = client_context(pki.ca_file)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    result = await ssl_client(server.port, client, server_hostname=DOMAIN_A, starttls=False)
    assert result.version == "TLSv1.2"
    assert result.cipher.startswith("ECDHE-ECDSA-")
    conn = await server.last()
    bindings = conn.io.channel_bindings()
    assert bindings["tls-unique"] == result.tls_unique
    assert len(bindings["tls-unique"]) == 12  # the TLS 1.2 Finished verify_data
    assert bindings["tls-server-end-point"] == _sha256(result.peer_der)

    tls13 = await ssl_client(
        server.port, client_context(pki.ca_file), server_hostname=DOMAIN_A, starttls=False
    )
    assert tls13.version == "TLSv1.3"
    conn13 = await server.last()
    assert set(conn13.io.channel_bindings()) == {"tls-server-end-point"}


# -- TLSSession as a client, through an asyncio Protocol --------------------------------------


class EchoClientProtocol(asyncio.Protocol):
    """STARTTLS client built on StreamTLS(server_side=False)."""

    def __init__(self, ctx: ssl.SSLContext, hostname: str, payload: bytes) -> None:
        self.ctx, self.hostname, self.payload = ctx, hostname, payload
        self.io: StreamTLS | None = None
        self.plain = b""
        self.echoed = b""
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.io = StreamTLS(transport)
        self.io.write(b"STARTTLS\n")

    def data_received(self, data: bytes) -> None:
        assert self.io is not None
        try:
            app = self.io.data_received(data)
            if not self.io.tls_active:
                self.plain += app
                if self.plain.startswith(b"PROCEED\n"):
                    rest = self.plain[len(b"PROCEED\n") :]
                    self.io.start_tls(
                        self.ctx, server_side=False, server_hostname=self.hostname, initial=rest
                    )
                    self.io.write(self.payload)  # queued until the handshake completes
                return
        except ssl.SSLError as exc:
            if not self.done.done():
                self.done.set_exception(exc)
            return
        self.echoed += app
        if len(self.echoed) >= len(self.payload) and not self.done.done():
            self.done.set_result(self.echoed)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("connection lost"))


async def test_tlssession_client_and_server_with_large_payload(pki: Pki, make_server) -> None:
    server = await make_server(server_context(pki.domains), direct=False)
    loop = asyncio.get_running_loop()
    payload = os.urandom(300 * 1024)  # larger than one TLS record and than READ_CHUNK
    transport, proto = await loop.create_connection(
        lambda: EchoClientProtocol(client_context(pki.ca_file), DOMAIN_B, payload),
        "127.0.0.1",
        server.port,
    )
    try:
        echoed = await asyncio.wait_for(proto.done, timeout=IO_TIMEOUT)
        assert echoed == payload
        client_bindings = proto.io.channel_bindings()
        conn = await server.last()
        assert conn.io.channel_bindings() == client_bindings
        client_info = proto.io.info()
        assert client_info.server_name == DOMAIN_B
        assert certs.dns_names(x509.load_der_x509_certificate(client_info.peer_cert)) == [DOMAIN_B]

        # close_notify from the client reaches the server, which closes its side.
        proto.io.close()
        for _ in range(200):
            if conn.io.transport.is_closing():
                break
            await asyncio.sleep(0.01)
        assert conn.io.peer_closed
        assert conn.io.transport.is_closing()
    finally:
        transport.close()


async def test_tlssession_client_refuses_wrong_certificate_name(pki: Pki, make_server) -> None:
    server = await make_server(server_context(pki.domains), direct=False)
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(
        lambda: EchoClientProtocol(client_context(pki.ca_file), "evil.example", b"secret\n"),
        "127.0.0.1",
        server.port,
    )
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.wait_for(proto.done, timeout=IO_TIMEOUT)
        conn = await server.last()
        assert conn.received == b""  # the queued payload was never sent
    finally:
        transport.close()
