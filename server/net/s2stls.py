"""TLS for server-to-server streams: a handshake that finishes whatever certificate the peer
presents, so that `peercert.verify_peer` can judge it afterwards.

Why not the standard library: a server-side `ssl.SSLContext` with `CERT_OPTIONAL` aborts the
handshake when the client certificate does not verify, for a self-signed certificate and for
one without the clientAuth purpose ("unsuitable certificate purpose"), which most public
certificates lack since 2026. Python's `ssl` has no verify callback to say "continue"; OpenSSL
has one, and pyOpenSSL exposes it with memory BIOs. Both directions use it: inbound we request
the peer's certificate, outbound we present our hosted domain's certificate and read the peer
server's chain, and neither side ever aborts over verification. A peer that cannot be verified
is refused later at the stream level, with a reason it can read (`not-authorized`).

The contexts made here plug into the one sans-I/O endpoint, `tls.TLSSession` (and so into
`transport.StreamTLS.start_tls`): `S2SContext.wrap_bio` gives it an object with the part of
`ssl.SSLObject` it uses, raising the `ssl` exceptions. `S2STLSSession` adds `peer_chain()`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from .tls import INTERMEDIATE_CIPHERS, READ_CHUNK, CertKeyPaths, TLSSession, _normalise

__all__ = ["S2SContext", "S2STLSSession", "s2s_client_context", "s2s_server_context"]

_SESSION_ID = b"vines-s2s"


def _accept_any(_conn: SSL.Connection, _cert: object, _errno: int, _depth: int, _ok: int) -> bool:
    """Let the handshake finish whatever the chain: the decision comes after it."""
    return True


def _base_context(cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]):
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(INTERMEDIATE_CIPHERS.encode("ascii"))
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_TICKET)
    ctx.use_certificate_chain_file(os.fspath(cert_path))
    ctx.use_privatekey_file(os.fspath(key_path))
    ctx.check_privatekey()
    ctx.set_verify(SSL.VERIFY_PEER, _accept_any)
    return ctx


def _alpn_selector(protocols: list[bytes]) -> Callable[[SSL.Connection, list[bytes]], bytes]:
    def select(_conn: SSL.Connection, offered: list[bytes]) -> bytes:
        for proto in protocols:
            if proto in offered:
                return proto
        return SSL.NO_OVERLAPPING_PROTOCOLS

    return select


def s2s_server_context(
    domains: dict[str, CertKeyPaths], *, alpn: list[str] | None = None
) -> S2SContext:
    """A server context for inbound s2s: one certificate per hosted domain chosen by SNI (the
    first one without SNI or for an unknown name), TLS 1.2+, the peer's certificate requested
    but never a reason to abort. `alpn=['xmpp-server']` for direct TLS (XEP-0368)."""
    if not domains:
        raise ValueError("s2s_server_context needs at least one domain")
    contexts: dict[str, SSL.Context] = {}
    for domain, (cert_path, key_path) in domains.items():
        ctx = _base_context(cert_path, key_path)
        # a server that asks for client certificates needs a session id context (OpenSSL)
        ctx.set_session_id(_SESSION_ID)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        if alpn:
            ctx.set_alpn_select_callback(_alpn_selector([p.encode("ascii") for p in alpn]))
        ctx.domain = _normalise(domain)  # type: ignore[attr-defined]  # for TLSInfo
        contexts[_normalise(domain)] = ctx

    def pick_certificate(conn: SSL.Connection) -> None:
        name = conn.get_servername()
        if name:
            chosen = contexts.get(_normalise(name.decode("ascii", "replace")))
            if chosen is not None:
                conn.set_context(chosen)

    for ctx in contexts.values():
        ctx.set_tlsext_servername_callback(pick_certificate)
    return S2SContext(next(iter(contexts.values())))


def s2s_client_context(
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    *,
    alpn: list[str] | None = None,
) -> S2SContext:
    """A client context for outbound s2s presenting our hosted domain's certificate; the peer
    server's chain is read, not judged, by the handshake."""
    ctx = _base_context(cert_path, key_path)
    if alpn:
        ctx.set_alpn_protos([p.encode("ascii") for p in alpn])
    return S2SContext(ctx)


class _PyOpenSSLObject:
    """The part of ssl's TLS object (the C core of `ssl.SSLObject`) that `TLSSession` uses,
    over a pyOpenSSL connection: bytes move between the session's `ssl.MemoryBIO`s and
    pyOpenSSL's own BIOs around every call, and pyOpenSSL's errors become the `ssl` ones
    TLSSession and the connection handle."""

    __slots__ = ("_conn", "_eof_fed", "_incoming", "_outgoing", "server_hostname", "server_side")

    def __init__(
        self,
        conn: SSL.Connection,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool,
        server_hostname: str | None,
    ) -> None:
        self._conn = conn
        self._incoming = incoming
        self._outgoing = outgoing
        self._eof_fed = False
        self.server_side = server_side
        self.server_hostname = server_hostname

    def _call(self, operation: Callable[..., Any], *args: Any) -> Any:
        data = self._incoming.read()
        if data:
            self._conn.bio_write(data)
        if self._incoming.eof and not self._eof_fed:
            self._eof_fed = True
            self._conn.bio_shutdown()
        try:
            return operation(*args)
        except SSL.WantReadError:
            raise ssl.SSLWantReadError("more TLS data needed") from None
        except SSL.ZeroReturnError:
            raise ssl.SSLZeroReturnError("TLS close_notify received") from None
        except SSL.SysCallError as exc:
            raise ssl.SSLEOFError(f"TLS stream truncated: {exc}") from None
        except SSL.Error as exc:
            raise ssl.SSLError(f"TLS error: {exc}") from None
        finally:
            while True:
                try:
                    out = self._conn.bio_read(READ_CHUNK)
                except SSL.WantReadError:
                    break
                if not out:
                    break
                self._outgoing.write(out)

    def do_handshake(self) -> None:
        self._call(self._conn.do_handshake)

    def read(self, size: int) -> bytes:
        return self._call(self._conn.recv, size)

    def write(self, data: bytes) -> int:
        self._call(self._conn.sendall, data)
        return len(data)

    def shutdown(self) -> None:
        self._call(self._conn.shutdown)

    def pending(self) -> int:
        """Never 0: TLSSession stops reading early when its BIO and this are empty, but the
        ciphertext moved into pyOpenSSL's own BIO is not counted anywhere; reading on until
        WantRead is what finds the records still in it."""
        return 1

    @property
    def context(self) -> SSL.Context:
        return self._conn.get_context()  # TLSInfo.server_name reads its `domain`

    def version(self) -> str | None:
        name = self._conn.get_protocol_version_name()
        return name if name.startswith("TLS") else None

    def cipher(self) -> tuple[str, str, int] | None:
        name = self._conn.get_cipher_name()
        if name is None:
            return None
        return name, self._conn.get_cipher_version() or "", self._conn.get_cipher_bits() or 0

    def selected_alpn_protocol(self) -> str | None:
        return self._conn.get_alpn_proto_negotiated().decode("ascii") or None

    def getpeercert(self, binary_form: bool = True) -> bytes | None:
        leaf = self._conn.get_peer_certificate(as_cryptography=True)
        return leaf.public_bytes(Encoding.DER) if leaf is not None else None

    def get_channel_binding(self, _kind: str = "tls-unique") -> None:
        return None  # SASL EXTERNAL on s2s binds nothing

    def peer_chain(self) -> list[x509.Certificate]:
        leaf = self._conn.get_peer_certificate(as_cryptography=True)
        if leaf is None:
            return []
        # OpenSSL leaves a client's own certificate out of the chain on the server side
        rest = self._conn.get_peer_cert_chain(as_cryptography=True) or []
        return [leaf] + [c for c in rest if c != leaf]


class S2SContext:
    """What `TLSSession` needs of an `ssl.SSLContext` (`wrap_bio`), backed by pyOpenSSL."""

    __slots__ = ("ssl_context",)

    def __init__(self, ssl_context: SSL.Context) -> None:
        self.ssl_context = ssl_context

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
    ) -> _PyOpenSSLObject:
        conn = SSL.Connection(self.ssl_context, None)
        if server_side:
            conn.set_accept_state()
        else:
            conn.set_connect_state()
            if server_hostname:
                conn.set_tlsext_host_name(server_hostname.encode("ascii"))
        return _PyOpenSSLObject(conn, incoming, outgoing, server_side, server_hostname)


class S2STLSSession(TLSSession):
    """`TLSSession` over an `S2SContext`, which also gives the peer's certificate chain."""

    __slots__ = ()

    def peer_chain(self) -> list[x509.Certificate]:
        """The certificates the peer presented, leaf first (empty before the handshake or
        when it sent none), for `peercert.verify_peer`."""
        if not self.handshake_done:
            return []
        return self._obj.peer_chain()
