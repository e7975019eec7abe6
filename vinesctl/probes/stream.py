"""A minimal XMPP stream opener for probes: TCP, stream header, STARTTLS or direct TLS.

Blocking sockets with a deadline per attempt, so a silent peer ends in an error, never a hang.
Nothing here raises for a network problem: `open_stream` returns a `Handshake` that records how
far it got (`stage`) and why it stopped (`error`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.parser import ParserLimits, Stanza, StreamClose, StreamParser

NS_STREAMS, NS_TLS, NS_SASL, NS_STREAM_ERRORS = ns.STREAM, ns.TLS, ns.SASL, ns.STREAMS_ERR
CLOSED = "</stream:stream>"  # the tag of the element that stands for the stream's end

STAGES = ("tcp", "stream", "starttls", "tls", "features", "done")


@dataclass
class Handshake:
    """How one connection attempt went. `stage` is the last stage reached ('done' on success)."""

    host: str
    port: int
    mode: str  # 'starttls' or 'direct'
    stage: str = "tcp"
    error: str = ""
    address: str = ""
    features: list[str] = field(default_factory=list)
    starttls_offered: bool = False
    starttls_required: bool = False
    stream_error: str = ""
    tls_version: str = ""
    cipher: str = ""
    cipher_bits: int = 0
    alpn: str = ""
    chain: list[bytes] = field(default_factory=list)  # DER, leaf first
    verified: bool | None = None
    verify_error: str = ""
    sasl_mechanisms: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.stage == "done"


class ProbeError(Exception):
    """A step failed; the message is for people."""


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left


class _Reader:
    """The peer's stream, read by the server's own sans-I/O parser (vines_server.xmpp.parser:
    restricted XML, size and depth limits): its top-level elements, in order."""

    def __init__(self) -> None:
        self.parser = StreamParser(ParserLimits.post_auth())
        self.done: list[Element] = []  # finished top-level elements, and CLOSED at the end

    def feed(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
        except StreamError as exc:
            raise ProbeError(f"peer sent bad XML ({exc.condition}: {exc.text})") from None
        for event in events:
            if isinstance(event, Stanza):
                self.done.append(event.element)
            elif isinstance(event, StreamClose):
                self.done.append(Element(CLOSED))


def _stream_header(domain: str, s2s: bool, sender: str | None) -> bytes:
    ns = "jabber:server" if s2s else "jabber:client"
    extra = f" from='{sender}'" if sender else ""
    return (
        f"<?xml version='1.0'?><stream:stream to='{domain}'{extra} version='1.0' "
        f"xml:lang='en' xmlns='{ns}' xmlns:stream='{NS_STREAMS}'>"
    ).encode()


def _next_element(sock: socket.socket, reader: _Reader, deadline: _Deadline) -> Element:
    while not reader.done:
        sock.settimeout(deadline.left())
        data = sock.recv(65536)
        if not data:
            raise ProbeError("peer closed the connection")
        reader.feed(data)
    return reader.done.pop(0)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _read_features(sock: socket.socket, deadline: _Deadline) -> tuple[_Reader, Element]:
    reader = _Reader()
    el = _next_element(sock, reader, deadline)
    if el.tag == f"{{{NS_STREAMS}}}error":
        cond = [_local(c.tag) for c in el if c.tag.startswith(f"{{{NS_STREAM_ERRORS}}}")]
        raise ProbeError(f"stream error: {cond[0] if cond else 'unknown'}")
    if el.tag != f"{{{NS_STREAMS}}}features":
        raise ProbeError(f"expected stream features, got <{_local(el.tag)}>")
    return reader, el


def _record_features(hs: Handshake, features: Element, pre_tls: bool) -> None:
    # each feature as 'namespace name', as the reports have always shown them
    hs.features = [" ".join(c.tag[1:].split("}", 1)) if "}" in c.tag else c.tag for c in features]
    if pre_tls:
        starttls = features.find(f"{{{NS_TLS}}}starttls")
        hs.starttls_offered = starttls is not None
        hs.starttls_required = (
            starttls is not None and starttls.find(f"{{{NS_TLS}}}required") is not None
        )
    mechs = [
        (m.text or "").strip()
        for m in features.findall(f"{{{NS_SASL}}}mechanisms/{{{NS_SASL}}}mechanism")
    ]
    if mechs:
        hs.sasl_mechanisms = mechs


def open_stream(
    host: str,
    port: int,
    domain: str,
    context: ssl.SSLContext,
    *,
    direct: bool = False,
    s2s: bool = False,
    timeout: float = 10.0,
    sender: str | None = None,
    after_tls: bool = True,
    addresses: list[str] | None = None,
) -> Handshake:
    """Connect to host:port, open an XMPP stream for `domain` and complete TLS with `context`.

    SNI is the source domain; with direct TLS, ALPN offers xmpp-client / xmpp-server (XEP-0368).
    After TLS, a second stream header collects the SASL mechanisms unless `after_tls` is false.
    `addresses` (already resolved, e.g. by the DNS probe's resolver) are tried in order; without
    them the system resolver looks up `host`.
    """
    hs = Handshake(host=host, port=port, mode="direct" if direct else "starttls")
    started = time.monotonic()
    deadline = _Deadline(timeout)
    sock: socket.socket | None = None
    try:
        sock = _connect(host, port, addresses, deadline)
        hs.address = sock.getpeername()[0]
        if direct:
            hs.stage = "tls"
            tls = _wrap(
                sock, context, domain, deadline, alpn=["xmpp-server" if s2s else "xmpp-client"]
            )
            sock = tls
        else:
            hs.stage = "stream"
            sock.sendall(_stream_header(domain, s2s, sender))
            reader, features = _read_features(sock, deadline)
            _record_features(hs, features, pre_tls=True)
            hs.stage = "starttls"
            if not hs.starttls_offered:
                raise ProbeError("STARTTLS is not offered")
            sock.sendall(f"<starttls xmlns='{NS_TLS}'/>".encode())
            answer = _next_element(sock, reader, deadline)
            if answer.tag != f"{{{NS_TLS}}}proceed":
                raise ProbeError(f"STARTTLS refused (<{_local(answer.tag)}>)")
            hs.stage = "tls"
            sock = _wrap(sock, context, domain, deadline, alpn=None)
        assert isinstance(sock, ssl.SSLSocket)
        hs.tls_version = sock.version() or ""
        cipher = sock.cipher()
        if cipher:
            hs.cipher, hs.cipher_bits = cipher[0], cipher[2] or 0
        hs.alpn = sock.selected_alpn_protocol() or ""
        hs.chain = peer_chain(sock)
        hs.verified = True if context.verify_mode != ssl.CERT_NONE else None
        if after_tls:
            # the stream after TLS shows the SASL mechanisms; a peer that stops here (an s2s
            # peer wanting a 'from', say) still completed TLS: note it, do not fail
            hs.stage = "features"
            try:
                sock.settimeout(deadline.left())
                sock.sendall(_stream_header(domain, s2s, sender))
                _, features = _read_features(sock, deadline)
                _record_features(hs, features, pre_tls=False)
                with contextlib.suppress(OSError):
                    sock.sendall(b"</stream:stream>")
            except (ProbeError, TimeoutError, OSError) as exc:
                hs.stream_error = f"after TLS: {exc}"
        hs.stage = "done"
    except ssl.SSLCertVerificationError as exc:
        hs.verified = False
        hs.verify_error = exc.verify_message or str(exc)
        hs.error = f"certificate not trusted: {hs.verify_error}"
    except TimeoutError:
        hs.error = f"timed out after {timeout:g}s during {hs.stage}"
    except ssl.SSLError as exc:
        hs.error = f"TLS handshake failed: {exc.reason or exc}"
    except ConnectionRefusedError:
        hs.error = "connection refused"
    except OSError as exc:
        hs.error = exc.strerror or str(exc)
    except ProbeError as exc:
        hs.error = str(exc)
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        hs.seconds = round(time.monotonic() - started, 3)
    return hs


def _connect(
    host: str, port: int, addresses: list[str] | None, deadline: _Deadline
) -> socket.socket:
    if not addresses:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ProbeError(f"cannot resolve {host} ({exc.strerror})") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
    last: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=deadline.left())
        except TimeoutError:
            raise
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


def _wrap(
    sock: socket.socket,
    context: ssl.SSLContext,
    domain: str,
    deadline: _Deadline,
    alpn: list[str] | None,
) -> ssl.SSLSocket:
    if alpn:
        context.set_alpn_protocols(alpn)
    from vines_server.xmpp.jid import JIDError, domain_to_ascii

    sni = None if _is_ip(domain) else domain
    if sni is not None:
        with contextlib.suppress(JIDError):  # ssl would encode a U-label by IDNA2003
            sni = domain_to_ascii(sni)
    tls = context.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False)
    tls.settimeout(deadline.left())
    tls.do_handshake()
    return tls


def _is_ip(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return False
    return True


def peer_chain(sock: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
    """The certificates the peer sent (DER, leaf first).

    Python 3.11 has no public API for this; the C object behind SSLSocket/SSLObject has
    `get_unverified_chain()` (3.10+, public from 3.13). Without it, only the leaf is returned.
    """
    inner = getattr(sock, "_sslobj", None)
    getter = getattr(inner, "get_unverified_chain", None) or getattr(
        sock, "get_unverified_chain", None
    )
    if getter is not None:
        try:
            chain = getter() or []
            return [
                c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                for c in chain
            ]
        except (ssl.SSLError, AttributeError, ValueError):
            pass
    leaf = sock.getpeercert(binary_form=True)
    return [leaf] if leaf else []
