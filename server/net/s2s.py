"""Server-to-server connections: the inbound s2s stream kind (on the generic StreamConnection)
and the outbound link (our TLS client under an `S2SOutStream`), with the connect loop shared by
the federation (`s2s_federation.py`) and the peer check (`s2s_probe.py`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast
from xml.etree.ElementTree import Element

from vines_server.net import resolve
from vines_server.net.peercert import TrustStore, verify_peer
from vines_server.net.reads import SharedBufferReads
from vines_server.net.s2stls import S2STLSSession, s2s_client_context
from vines_server.net.transport import StreamTLS
from vines_server.xmpp import actions
from vines_server.xmpp.dialback import Correlation
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.s2s import (
    DialbackVerified,
    DialbackVerify,
    OutboundFailed,
    OutboundReady,
    PeerAuthenticated,
    S2SInStream,
    S2SOutStream,
    S2SSettings,
)
from vines_server.xmpp.stanza import serialize

if TYPE_CHECKING:
    from vines_server.net.connection import StreamConnection
    from vines_server.server import Server


log = logging.getLogger("vines_server.s2s")

# ---- inbound ----------------------------------------------------------------------------------


class S2SInKind:
    """Streams a peer server opened to us."""

    tls_session = S2STLSSession

    def listener(self, direct_tls: bool) -> str:
        return "s2s-direct-tls" if direct_tls else "s2s"

    def new_stream(self, server: Server, direct_tls: bool) -> S2SInStream:
        fed = server.federation
        assert fed is not None
        return S2SInStream(fed.settings, dialback=fed.correlation, tls=direct_tls)

    def tls_established(self, conn: StreamConnection) -> list[actions.Action]:
        assert conn.io is not None and isinstance(conn.io.session, S2STLSSession)
        fed = conn.server.federation
        assert fed is not None
        chain = conn.io.session.peer_chain()
        info = conn.io.info()
        if info is not None:
            conn.info.update(tls_version=info.version, cipher=info.cipher)
        stream = conn.stream
        assert isinstance(stream, S2SInStream)

        def judge(domain: str):
            verdict = verify_peer(chain, domain, fed.trust)
            conn.info["certificate"] = "verified" if verdict.verified else verdict.reason
            return verdict

        return stream.tls_established(judge)

    async def execute(self, conn: StreamConnection, action: actions.Action) -> None:
        fed = conn.server.federation
        assert fed is not None
        match action:
            case PeerAuthenticated(domain, mechanism):
                conn.negotiated()
                conn.info.setdefault("since", time.time())
                conn.info.update(peer=domain, mechanism=mechanism)
                fed.inbound.add(conn)
                log.info("s2s in %s authenticated %s with %s", conn.peer, domain, mechanism)
            case actions.StanzaIn(element):
                await conn.server.router.route(element, None)
            case DialbackVerify() as request:
                fed.ask_verify(request, conn)

    def lost(self, conn: StreamConnection) -> None:
        fed = conn.server.federation
        if fed is not None:
            fed.inbound.discard(conn)
            fed.forget_verify(conn)


S2S_IN = S2SInKind()


# ---- outbound ---------------------------------------------------------------------------------


class LinkOwner(Protocol):
    """What an outbound link needs of whoever runs it (the federation, or a peer check)."""

    settings: S2SSettings
    correlation: Correlation
    trust: TrustStore

    def certificate(self, domain: str) -> tuple[Any, Any]: ...

    def verified(self, answer: DialbackVerified) -> None: ...

    def link_lost(self, link: OutboundLink) -> None: ...


class OutboundLink(SharedBufferReads):  # an asyncio Protocol; reads: net/reads.py
    """One outbound s2s stream: our TLS client session under an `S2SOutStream`."""

    def __init__(self, fed: LinkOwner, peer: Peer, direct_tls: bool) -> None:
        self.fed, self.peer_state = fed, peer
        self.stream = S2SOutStream(
            fed.settings, local=peer.local, remote=peer.remote, dialback=fed.correlation
        )
        self.direct_tls = direct_tls
        self.transport: asyncio.Transport | None = None
        self.io: StreamTLS | None = None
        self.ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.judged = asyncio.Event()  # the peer's certificate was judged (or the link is gone)
        self.info: dict[str, object] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's does not subclass asyncio.Transport: no isinstance)
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.io = StreamTLS(transport)
        peer = transport.get_extra_info("peername")
        self.info["address"] = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self.direct_tls:
            self._start_tls(alpn=["xmpp-server"])
        else:
            self._run(self.stream.open())

    def data_received(self, data: bytes) -> None:
        assert self.io is not None
        if self.io.tls_active:
            try:
                data = self.io.data_received(data)
            except OSError as exc:
                self._failed(f"TLS failed: {exc}")
                return
            if self.io.handshake_done and "tls_version" not in self.info:
                self._tls_done()
            if not data:
                return
        self._run(self.stream.receive(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.judged.set()
        self._failed(f"connection lost ({exc})" if exc else "connection closed")
        self.fed.link_lost(self)

    @property
    def backlog(self) -> int:
        """Bytes written and not yet taken by the socket."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def send_element(self, element: Element) -> None:
        if not self.closed:
            self._write(serialize(element))

    def send_verify(self, element: Element) -> None:
        self._run(self.stream.send_verify(element))

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self._write(b"</stream:stream>")
            self.transport.close()

    def _start_tls(self, alpn: list[str] | None = None) -> None:
        assert self.io is not None
        cert, key = self.fed.certificate(self.peer_state.local)
        ctx = s2s_client_context(cert, key, alpn=alpn)
        self.io.start_tls(
            ctx,  # type: ignore[arg-type]  # an S2SContext has the wrap_bio TLSSession uses
            server_side=False,
            server_hostname=self.peer_state.remote,
            session_class=S2STLSSession,
        )

    def _tls_done(self) -> None:
        assert self.io is not None and isinstance(self.io.session, S2STLSSession)
        info = self.io.info()
        if info is not None:
            self.info.update(tls_version=info.version, cipher=info.cipher)
        chain = self.io.session.peer_chain()

        def judge(domain: str):
            verdict = verify_peer(chain, domain, self.fed.trust)
            self.info["certificate"] = "verified" if verdict.verified else verdict.reason
            self.info["identity"] = verdict.identity
            self.info["detail"] = verdict.detail
            self.judged.set()
            return verdict

        if self.direct_tls:
            self._run(self.stream.open(judge))
        else:
            self._run(self.stream.tls_established(judge))

    def _write(self, data: bytes) -> None:
        assert self.io is not None
        self.io.write(data)

    def _run(self, todo: list[actions.Action]) -> None:
        for action in todo:
            match action:
                case actions.Send(data):
                    if not self.closed:
                        self._write(data)
                case actions.StartTLS():
                    self._start_tls()
                case OutboundReady(mechanism):
                    self.info["mechanism"] = mechanism
                    if not self.ready.done():
                        self.ready.set_result(mechanism)
                case OutboundFailed(reason):
                    self._failed(reason)
                case DialbackVerified() as answer:
                    self.fed.verified(answer)
                case actions.Close(error):
                    if error is not None:
                        log.info("s2s out %s: %s", self.peer_state.remote, error)
                    if self.transport is not None:
                        self.transport.close()

    def _failed(self, reason: str) -> None:
        self.info.setdefault("error", reason)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
            self.ready.exception()  # retrieved: the connector reads it or nobody waits


@dataclass
class Peer:
    """The outbound state of one domain pair."""

    local: str
    remote: str
    queue: deque[Element] = field(default_factory=deque)
    link: OutboundLink | None = None
    connecting: asyncio.Task[None] | None = None
    bounce_until: float = 0.0
    bounce_error: StanzaError | None = None
    verifies: list[Element] = field(default_factory=list)  # db:verify for the next link
    since: float = field(default_factory=time.time)

    @property
    def ready(self) -> bool:
        link = self.link
        return link is not None and not link.closed and link.stream.mechanism is not None


async def connect_each(
    owner: LinkOwner,
    peer: Peer,
    targets: list[resolve.Endpoint],
    timeout: float,
    reasons: list[str],
) -> AsyncIterator[tuple[resolve.Endpoint, OutboundLink]]:
    """Each target's addresses in order, as a connected link (TCP up, our stream or TLS
    started); why each one that did not connect failed goes to `reasons`."""
    loop = asyncio.get_running_loop()
    for endpoint in targets:
        try:
            addrs = await resolve.addresses(endpoint)
        except resolve.PeerNotFound as exc:
            reasons.append(str(exc))
            continue
        for family, addr in addrs:
            link = OutboundLink(owner, peer, endpoint.direct_tls)
            for verify in peer.verifies:  # the stream sends them once encrypted
                link.stream.send_verify(verify)
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda link=link: link, addr[0], addr[1], family=family),
                    timeout,
                )
            except (OSError, TimeoutError) as exc:
                reasons.append(f"{endpoint.label}: {exc or 'timed out'}")
                continue
            yield endpoint, link
