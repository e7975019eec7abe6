"""TLS for the server: SSL contexts and a sans-I/O TLS endpoint over two `ssl.MemoryBIO`s.

Why our own endpoint: asyncio's SSL transport (`create_server(ssl=...)`, `loop.start_tls`)
allocates a 256 KiB buffer per connection. `TLSSession` drives `SSLContext.wrap_bio` directly,
reads in small chunks and holds no buffers of its own, so an idle TLS connection costs a few
tens of KiB (see `bench/tls_memory.py`). It is the same class for STARTTLS and direct TLS
(XEP-0368), server side and client side; `net/transport.py` shows how a plain
`asyncio.Protocol` uses it.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from vines_server.xmpp.jid import JIDError, domain_to_ascii, normalize_domainpart

__all__ = [
    "INTERMEDIATE_CIPHERS",
    "READ_CHUNK",
    "TLSInfo",
    "TLSSession",
    "client_context",
    "server_context",
    "tls_server_end_point",
]

#: Mozilla "intermediate" TLS 1.2 suites (TLS 1.3 suites are OpenSSL's defaults, all AEAD).
#: The DHE-RSA suites of the Mozilla list are left out: the stdlib loads no DH parameters.
INTERMEDIATE_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)

#: Size of each read from the TLS object: small, so that no connection holds a big buffer.
READ_CHUNK = 16 * 1024

CertKeyPaths = tuple[str | os.PathLike[str], str | os.PathLike[str]]


# The hash of the usual signature algorithms by their DER-encoded OID, so that a server
# start (which computes the binding of each certificate) does not import cryptography (10 MB).
_SIGNATURE_HASHES = {
    bytes.fromhex("2a864886f70d010104"): "md5",  # md5WithRSAEncryption
    bytes.fromhex("2a864886f70d010105"): "sha1",  # sha1WithRSAEncryption
    bytes.fromhex("2a864886f70d01010b"): "sha256",  # sha256WithRSAEncryption
    bytes.fromhex("2a864886f70d01010c"): "sha384",
    bytes.fromhex("2a864886f70d01010d"): "sha512",
    bytes.fromhex("2a864886f70d01010e"): "sha224",
    bytes.fromhex("2a8648ce3d0401"): "sha1",  # ecdsa-with-SHA1
    bytes.fromhex("2a8648ce3d040301"): "sha224",  # ecdsa-with-SHA224
    bytes.fromhex("2a8648ce3d040302"): "sha256",
    bytes.fromhex("2a8648ce3d040303"): "sha384",
    bytes.fromhex("2a8648ce3d040304"): "sha512",
}


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER item at pos; ValueError if cut."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length, pos = data[pos], data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _signature_oid(cert_der: bytes) -> bytes | None:
    """The OID of Certificate.signatureAlgorithm (RFC 5280 4.1.1.2) as DER bytes, or None
    when the certificate is not laid out as expected (the caller then parses it properly)."""
    try:
        tag, start, end = _der_item(cert_der, 0)  # Certificate ::= SEQUENCE
        if tag != 0x30:
            return None
        tag, _, after_tbs = _der_item(cert_der, start)  # tbsCertificate
        tag2, alg_start, alg_end = _der_item(cert_der, after_tbs)  # AlgorithmIdentifier
        if tag != 0x30 or tag2 != 0x30 or alg_end > end:
            return None
        tag, oid_start, oid_end = _der_item(cert_der, alg_start)
        return cert_der[oid_start:oid_end] if tag == 0x06 and oid_end <= alg_end else None
    except ValueError:
        return None


def tls_server_end_point(cert_der: bytes) -> bytes:
    """RFC 5929 `tls-server-end-point` for a DER certificate.

    The hash is the certificate's signature hash, except MD5 and SHA-1 which become SHA-256.
    Raises ValueError for certificates without one (Ed25519/Ed448), where the binding is
    undefined.
    """
    name = _SIGNATURE_HASHES.get(_signature_oid(cert_der) or b"", "")
    if not name:  # anything rarer (RSA-PSS, DSA, Ed25519...): ask cryptography, imported now
        from cryptography import x509

        algorithm = x509.load_der_x509_certificate(cert_der).signature_hash_algorithm
        if algorithm is None:
            raise ValueError("tls-server-end-point is undefined for this certificate's signature")
        name = algorithm.name
    if name in ("md5", "sha1"):
        name = "sha256"
    return hashlib.new(name, cert_der).digest()


class _DomainContext(ssl.SSLContext):
    """A server context for one domain's certificate; remembers what channel binding needs."""

    domain: str
    cert_der: bytes
    end_point: bytes | None


def _read_first_cert_der(cert_path: str | os.PathLike[str]) -> bytes:
    data = Path(cert_path).read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        start = data.index(b"-----BEGIN CERTIFICATE-----")
        end = data.index(b"-----END CERTIFICATE-----", start) + len(b"-----END CERTIFICATE-----")
        return ssl.PEM_cert_to_DER_cert(data[start:end].decode("ascii"))
    return data


def _domain_context(
    domain: str,
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    alpn: list[str] | None,
    client_cafile: str | os.PathLike[str] | None,
    request_client_cert: bool,
) -> _DomainContext:
    ctx = _DomainContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
    # TLS 1.3: OP_NO_TICKET alone still sends stateful tickets; send none at all.
    ctx.num_tickets = 0
    ctx.load_cert_chain(os.fspath(cert_path), os.fspath(key_path))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if request_client_cert:
        # s2s / SASL EXTERNAL: ask for a certificate, verification result is checked later.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if client_cafile is not None:
            ctx.load_verify_locations(cafile=os.fspath(client_cafile))
        else:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    ctx.domain = domain
    ctx.cert_der = _read_first_cert_der(cert_path)
    try:
        ctx.end_point = tls_server_end_point(ctx.cert_der)
    except ValueError:
        ctx.end_point = None
    return ctx


def _normalise(name: str) -> str:
    """The prepared domain (U-labels, as the config keys it) of a configured name or an SNI
    server name (A-labels)."""
    try:
        return normalize_domainpart(name)
    except JIDError:
        return name.rstrip(".").lower()  # matches no hosted domain


def _sni(name: str) -> str:
    try:
        return domain_to_ascii(name)
    except JIDError:
        return name  # an IP address or a name ssl refuses with its own error


def server_context(
    domains: dict[str, CertKeyPaths],
    *,
    alpn: list[str] | None = None,
    request_client_cert: bool = False,
    client_cafile: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """A server SSLContext serving one certificate per domain, chosen by SNI.

    `domains` maps a domain to its `(cert_path, key_path)` (PEM; the cert file may hold the
    chain). The first domain's certificate is used when the client sends no SNI or an unknown
    name. TLS 1.2 is the minimum; TLS 1.2 suites are Mozilla intermediate; compression,
    renegotiation and session tickets are off; ECDH groups are OpenSSL's defaults.

    For direct TLS (XEP-0368) pass `alpn=['xmpp-client']` (or `['xmpp-server']`).
    `request_client_cert` asks peers for a certificate (s2s, SASL EXTERNAL), verified against
    `client_cafile` or the system store; the result is in `TLSInfo.peer_cert`.
    """
    if not domains:
        raise ValueError("server_context needs at least one domain")
    contexts: dict[str, _DomainContext] = {}
    for domain, (cert_path, key_path) in domains.items():
        contexts[_normalise(domain)] = _domain_context(
            _normalise(domain), cert_path, key_path, alpn, client_cafile, request_client_cert
        )
    default = next(iter(contexts.values()))

    # sslobj: ssl's C TLS object (TLSSession wraps no ssl.SSLObject around it)
    def pick_certificate(sslobj, server_name: str | None, _ctx: object) -> None:
        if server_name:
            chosen = contexts.get(_normalise(server_name))
            if chosen is not None and chosen is not sslobj.context:
                sslobj.context = chosen
        # No SNI or an unknown name: keep the default (first) certificate.

    # Every per-domain context gets the callback too, so whichever is the default works.
    for ctx in contexts.values():
        ctx.sni_callback = pick_certificate
    return default


def client_context(
    cafile: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    """A client SSLContext (TLS 1.2+), for tests, tools and outgoing s2s.

    With `verify`, the peer is checked against `cafile` (or the system store) and the host
    name; without it nothing is checked (diagnostics of broken servers only).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if verify:
        if cafile is not None:
            ctx.load_verify_locations(cafile=os.fspath(cafile))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What was negotiated on one connection."""

    version: str | None
    """`'TLSv1.2'` or `'TLSv1.3'`."""
    cipher: str | None
    server_name: str | None
    """Server side: the domain whose certificate was presented (chosen by SNI, else the
    default). Client side: the name we asked for."""
    alpn: str | None
    peer_cert: bytes | None
    """The peer's certificate (DER), or None when it sent none."""


class TLSSession:
    """A sans-I/O TLS endpoint: ciphertext in, plaintext out, and the reverse.

    Usage (the caller owns the socket)::

        session = TLSSession(ctx, server_side=True)
        app = session.receive(ciphertext)      # drives the handshake, returns plaintext
        transport.write(session.outgoing())    # after *every* call: handshake, alerts, data
        session.send(b"<stream:stream ...>")   # encrypts (queued until the handshake is done)
        transport.write(session.outgoing())

    `receive` raises `ssl.SSLError` on fatal errors; the alert OpenSSL produced is then in
    `outgoing()`, so flush it before closing the socket. A client session
    (`server_side=False`) queues its ClientHello at construction.
    """

    __slots__ = (
        "_closed",
        "_handshake_done",
        "_incoming",
        "_obj",
        "_outgoing",
        "_peer_closed",
        "_pending",
    )

    def __init__(
        self,
        ctx: ssl.SSLContext,
        *,
        server_side: bool = True,
        server_hostname: str | None = None,
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        # A-labels by IDNA2008: given a U-label, ssl would encode it by IDNA2003
        hostname = None if server_side or not server_hostname else _sni(server_hostname)
        if isinstance(ctx, ssl.SSLContext):
            # the C object that ssl.SSLObject wraps, without the wrapper: its instance dict
            # and weak reference are ~0.3 KiB of every connection (issue 14), and each of its
            # methods one more Python call per TLS record
            self._obj = ctx._wrap_bio(self._incoming, self._outgoing, server_side, hostname)
        else:  # outgoing s2s: a pyOpenSSL context with the same interface (s2stls.py)
            self._obj = ctx.wrap_bio(
                self._incoming, self._outgoing, server_side=server_side, server_hostname=hostname
            )
        self._handshake_done = False
        self._peer_closed = False
        self._closed = False
        self._pending: list[bytes] | None = None
        if not server_side:
            self._do_handshake()

    # -- state ------------------------------------------------------------------------------

    @property
    def handshake_done(self) -> bool:
        return self._handshake_done

    @property
    def peer_closed(self) -> bool:
        """True once the peer sent close_notify."""
        return self._peer_closed

    @property
    def open(self) -> bool:
        """Handshake done and no close_notify queued: application data goes out now."""
        return self._handshake_done and not self._closed

    @property
    def server_side(self) -> bool:
        return self._obj.server_side

    # -- I/O --------------------------------------------------------------------------------

    def _do_handshake(self) -> None:
        try:
            self._obj.do_handshake()
        except ssl.SSLWantReadError:
            return
        self._handshake_done = True
        if self._pending:
            pending, self._pending = self._pending, None
            for data in pending:
                self._obj.write(data)

    def receive(self, data: bytes) -> bytes:
        """Feed ciphertext from the socket; return the application data it carried.

        Raises ssl.SSLError (including ssl.SSLEOFError after `receive_eof`) on fatal errors.
        """
        if data:
            self._incoming.write(data)
        if not self._handshake_done:
            self._do_handshake()
            if not self._handshake_done:
                return b""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._obj.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._peer_closed = True
                break
            if not chunk:
                # read() returns b"" (rather than raising WantRead) only after close_notify.
                self._peer_closed = True
                break
            chunks.append(chunk)
            if not self._incoming.pending and not self._obj.pending():
                break  # all read: one more read() would only raise SSLWantReadError (costly)
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def receive_eof(self) -> bytes:
        """The socket reached EOF. Raises ssl.SSLEOFError unless the peer closed cleanly."""
        self._incoming.write_eof()
        if self._peer_closed or self._closed:
            return b""
        return self.receive(b"")

    def outgoing(self) -> bytes:
        """Ciphertext to write to the socket now (may be empty)."""
        if not self._outgoing.pending:
            return b""
        return self._outgoing.read()

    def send(self, data: bytes) -> None:
        """Encrypt application data; before the handshake completes it is queued."""
        if self._closed:
            raise ssl.SSLError("TLS session is closed")
        if not data:
            return
        if not self._handshake_done:
            if self._pending is None:
                self._pending = []
            self._pending.append(bytes(data))
            return
        self._obj.write(data)

    def close(self) -> None:
        """Queue close_notify in `outgoing()`; nothing more can be sent."""
        if self._closed:
            return
        self._closed = True
        if not self._handshake_done:
            return
        try:
            self._obj.shutdown()
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        except ssl.SSLError:
            pass

    # -- what was negotiated ----------------------------------------------------------------

    def info(self) -> TLSInfo:
        cipher = self._obj.cipher()
        if self._obj.server_side:
            ctx = self._obj.context
            server_name = getattr(ctx, "domain", None)
        else:
            server_name = self._obj.server_hostname
        version = self._obj.version()
        return TLSInfo(  # OpenSSL's names, shared: each session's info keeps them (issue 14)
            version=sys.intern(version) if version else None,
            cipher=sys.intern(cipher[0]) if cipher else None,
            server_name=server_name,
            alpn=self._obj.selected_alpn_protocol(),
            peer_cert=self._obj.getpeercert(True) if self._handshake_done else None,
        )

    def channel_bindings(self) -> dict[str, bytes]:
        """Channel-binding data usable on this connection (empty before the handshake).

        `tls-server-end-point` (RFC 5929) is always there: the hash of the server certificate,
        on the server side the one actually presented after SNI. `tls-unique` only on TLS 1.2
        (RFC 9266 forbids it on TLS 1.3).
        """
        if not self._handshake_done:
            return {}
        bindings: dict[str, bytes] = {}
        if self._obj.server_side:
            ctx = self._obj.context
            end_point = getattr(ctx, "end_point", None)
            if end_point is None and isinstance(getattr(ctx, "cert_der", None), bytes):
                end_point = tls_server_end_point(ctx.cert_der)
        else:
            der = self._obj.getpeercert(True)
            end_point = tls_server_end_point(der) if der else None
        if end_point is not None:
            bindings["tls-server-end-point"] = end_point
        if self._obj.version() == "TLSv1.2":
            unique = self._obj.get_channel_binding("tls-unique")
            if unique:
                bindings["tls-unique"] = unique
        return bindings
