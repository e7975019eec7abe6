"""Federation over the network: the inbound s2s stream kind (on the generic StreamConnection)
and the outbound side (`Federation`, the router's remote destination).

Outbound, per domain pair (local, remote), one link, reused: stanzas queue (bounded) while it
connects; resolution is `resolve.endpoints` (static route, SRV merged, hosts-file fallback);
each target gets a connect timeout. Bounces (design decision 9): `not-allowed` for a domain off
the allowlist or blocked (no DNS), `remote-server-not-found` when DNS or every target failed
before a stream existed, `remote-server-timeout` once a stream existed or on timeout; after a
failure new stanzas bounce at once for a short randomised period. Nothing queued is dropped
without a bounce (the router never bounces an error or a result).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from vines_server.core import admins
from vines_server.net import resolve
from vines_server.net.peercert import TrustStore, verify_peer
from vines_server.net.s2stls import S2STLSSession, s2s_client_context
from vines_server.net.transport import StreamTLS
from vines_server.xmpp import actions
from vines_server.xmpp.dialback import Correlation
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.parser import ParserLimits
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
    from vines_server.config import Config
    from vines_server.net.connection import StreamConnection
    from vines_server.server import Server

log = logging.getLogger("vines_server.s2s")

QUEUE_LIMIT = 1000  # stanzas per peer while connecting (overflow: resource-constraint, wait)
CONNECT_TIMEOUT = 10.0  # seconds per target
BOUNCE_PERIOD = (5.0, 15.0)  # seconds, randomised: after a failure new stanzas bounce at once


def federation_configured(config: Config) -> bool:
    return bool(config.federation.allow or config.federation.peers)


class FederationPolicy:
    """Who federates with whom, read synchronously by every s2s stream: vines.toml's allowlist
    and per-peer dialback, plus the run-time lists (`set_lists`)."""

    def __init__(self, config: Config) -> None:
        self.config = config  # replaced on reload ([federation] is reloadable)
        self.allow: dict[str, frozenset[str]] = {}
        self.block: dict[str, frozenset[str]] = {}

    def set_lists(self, domain: str, allow: list[str], block: list[str]) -> None:
        self.allow[domain] = frozenset(allow)
        self.block[domain] = frozenset(block)

    def allows(self, local: str, remote: str) -> bool:
        if local not in self.config.domains or remote in self.block.get(local, ()):
            return False
        return remote in self.config.federation.allow or remote in self.allow.get(local, ())

    def dialback(self, remote: str) -> bool:
        return self.config.federation.peer(remote).dialback


def s2s_settings(server: Server, policy: FederationPolicy, secret: bytes) -> S2SSettings:
    c2s = server.c2s_settings  # the same XML restrictions and size limits as c2s
    limits: ParserLimits = c2s.limits
    return S2SSettings(
        domains=server.domains,
        preauth_limits=c2s.preauth_limits,
        limits=limits,
        policy=policy,
        secret=secret,
    )


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


class OutboundLink(asyncio.Protocol):
    """One outbound s2s stream: our TLS client session under an `S2SOutStream`."""

    def __init__(self, fed: Federation | PeerProbe, peer: Peer, direct_tls: bool) -> None:
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
        assert isinstance(transport, asyncio.Transport)
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
    owner: Federation | PeerProbe,
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


class Federation:
    """The router's remote destination, and what inbound streams share (policy, trust,
    dialback table)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.policy = FederationPolicy(server.config)
        self.correlation = Correlation()
        self.settings = s2s_settings(server, self.policy, b"")
        self.trust: TrustStore = TrustStore.load(server.config.federation.ca_file)
        self.peers: dict[tuple[str, str], Peer] = {}
        self.inbound: set[StreamConnection] = set()
        self._waiting_verify: dict[str, StreamConnection] = {}  # inbound stream id -> conn
        self.queue_limit = QUEUE_LIMIT
        self.connect_timeout = CONNECT_TIMEOUT

    async def open(self) -> None:
        """The dialback secret outlives restarts (keys issued before a restart stay valid);
        the allow and block lists edited over XEP-0133 apply from the start, and each edit at
        once (the service module emits `federation/peers`)."""
        storage = self.server.storage
        lists = {}
        for kind in ("allow", "block"):
            raw = await storage.get_setting(admins.KEYS[kind])
            lists[kind] = json.loads(raw) if raw else {}
        for domain in self.server.domains:
            self.policy.set_lists(
                domain, lists["allow"].get(domain, []), lists["block"].get(domain, [])
            )
        self.server.host.hooks.on("federation/peers", self.peers_changed)
        self.server.host.hooks.on("config/reloaded", self.reloaded)
        self.server.host.services.setdefault("federation", self)  # modules/federation.py
        stored = await storage.get_setting("s2s_dialback_secret")
        if stored is None:
            stored = secrets.token_hex(32)
            await self.server.storage.set_setting("s2s_dialback_secret", stored)
        self.settings = s2s_settings(self.server, self.policy, bytes.fromhex(stored))

    def certificate(self, domain: str):
        conf = self.server.config.domains[domain]
        return conf.certificate, conf.key

    # ---- the router's destination ----------------------------------------------------------

    async def send(self, stanza: Element) -> None:
        router = self.server.router
        try:
            local = JID.parse(stanza.get("from", "")).domain
            remote = JID.parse(stanza.get("to", "")).domain
        except JIDError:
            router.bounce(stanza, StanzaError("jid-malformed"))
            return
        if not self.policy.allows(local, remote):
            text = f"federation with {remote} is not allowed"
            router.bounce(stanza, StanzaError("not-allowed", text, type="cancel"))
            return
        peer = self.peers.get((local, remote))
        if peer is None:
            peer = self.peers[(local, remote)] = Peer(local, remote)
        if peer.ready and not peer.queue:  # (a queue still being flushed keeps the order)
            assert peer.link is not None
            if peer.link.backlog > self.server.config.limits.output_bytes:
                # the peer does not read (design decision 12): bounded, and the sender knows
                text = f"{remote} is not reading; try again later"
                router.bounce(stanza, StanzaError("resource-constraint", text, type="wait"))
                return
            peer.link.send_element(stanza)
            router.stanzas_out += 1
            return
        if peer.bounce_error is not None and time.monotonic() < peer.bounce_until:
            router.bounce(stanza, peer.bounce_error)
            return
        if len(peer.queue) >= self.queue_limit:
            text = f"too many stanzas waiting for {remote}"
            router.bounce(stanza, StanzaError("resource-constraint", text, type="wait"))
            return
        peer.queue.append(stanza)
        self._connect(peer)

    def _connect(self, peer: Peer) -> asyncio.Task[None]:
        if peer.connecting is None or peer.connecting.done():
            peer.connecting = asyncio.ensure_future(self._establish(peer))
        return peer.connecting

    async def _establish(self, peer: Peer) -> None:
        error = await self._try_targets(peer)
        router = self.server.router
        if error is None:
            assert peer.link is not None
            while peer.queue:
                peer.link.send_element(peer.queue.popleft())
                router.stanzas_out += 1
            return
        peer.bounce_error = error
        peer.bounce_until = time.monotonic() + random.uniform(*BOUNCE_PERIOD)
        log.info("s2s out %s -> %s failed: %s", peer.local, peer.remote, error)
        while peer.queue:
            router.bounce(peer.queue.popleft(), error)

    async def _try_targets(self, peer: Peer) -> StanzaError | None:
        conf = self.server.config.federation.peer(peer.remote)
        static = (conf.host, conf.port) if conf.host else None
        stream_existed = False
        reasons: list[str] = []
        try:
            targets = await resolve.endpoints(peer.remote, static=static)
        except resolve.PeerNotFound as exc:
            return StanzaError("remote-server-not-found", str(exc), type="cancel")
        async for _endpoint, link in connect_each(
            self, peer, targets, self.connect_timeout, reasons
        ):
            stream_existed = True
            peer.link = link
            try:
                await asyncio.wait_for(
                    asyncio.shield(link.ready), self.server.config.deadlines.negotiation
                )
            except TimeoutError:
                link.close()
                peer.link = None
                return StanzaError("remote-server-timeout", "negotiation timed out", type="wait")
            except ConnectionError as exc:
                link.close()
                peer.link = None
                reasons.append(str(exc))
                continue
            peer.since = time.time()
            peer.verifies.clear()
            return None
        text = "; ".join(reasons) or f"no target for {peer.remote}"
        if stream_existed:
            return StanzaError("remote-server-timeout", text, type="wait")
        return StanzaError("remote-server-not-found", text, type="cancel")

    def link_lost(self, link: OutboundLink) -> None:
        peer = link.peer_state
        if peer.link is link:
            peer.link = None

    # ---- dialback across the two directions ----------------------------------------------

    def ask_verify(self, request: DialbackVerify, conn: StreamConnection) -> None:
        """Send db:verify to the authoritative server over our outbound link to it."""
        self._waiting_verify[request.stream_id] = conn
        peer = self.peers.get((request.local, request.remote))
        if peer is None:
            peer = self.peers[(request.local, request.remote)] = Peer(request.local, request.remote)
        if peer.link is not None and not peer.link.closed:
            peer.link.send_verify(request.element)
            return
        peer.verifies.append(request.element)  # handed to the link it connects next
        self._connect(peer)

    def forget_verify(self, conn: StreamConnection) -> None:
        """An inbound stream closed: no answer for it is awaited any more."""
        for stream_id in [k for k, c in self._waiting_verify.items() if c is conn]:
            del self._waiting_verify[stream_id]

    def verified(self, answer: DialbackVerified) -> None:
        conn = self._waiting_verify.pop(answer.stream_id, None)
        if conn is None or conn.closing:
            return
        stream = conn.stream
        assert isinstance(stream, S2SInStream)
        self.server.spawn(conn.execute(stream.dialback_verified(answer.remote, answer.valid)))

    # ---- administration ----------------------------------------------------------------------

    def streams(self) -> list[dict[str, object]]:
        """Every s2s stream (and peer still connecting), for `vinesctl s2s`."""
        rows: list[dict[str, object]] = []
        for peer in self.peers.values():
            link = peer.link
            if link is None and not peer.queue:
                continue
            info = link.info if link is not None else {}
            rows.append(
                {
                    "direction": "out",
                    "local": peer.local,
                    "domain": peer.remote,
                    "address": info.get("address"),
                    "tls_version": info.get("tls_version"),
                    "cipher": info.get("cipher"),
                    "auth": info.get("mechanism") or ("connecting" if link is None else None),
                    "certificate": info.get("certificate"),
                    "since": peer.since,
                    "queued": len(peer.queue),
                }
            )
        for conn in self.inbound:
            stream = conn.stream
            assert isinstance(stream, S2SInStream)
            rows.append(
                {
                    "direction": "in",
                    "local": stream.domain,
                    "domain": conn.info.get("peer"),
                    "address": conn.peer,
                    "tls_version": conn.info.get("tls_version"),
                    "cipher": conn.info.get("cipher"),
                    "auth": conn.info.get("mechanism"),
                    "certificate": conn.info.get("certificate"),
                    "since": conn.info.get("since"),
                    "queued": 0,
                }
            )
        return sorted(rows, key=lambda r: (str(r["domain"]), str(r["direction"])))

    async def reloaded(self, config: Config) -> None:
        """vines.toml reloaded: the new allowlist, dialback opt-ins, static routes and trust
        anchors apply at once; streams the new lists no longer allow close."""
        if config.federation.ca_file != self.policy.config.federation.ca_file:
            self.trust = await asyncio.to_thread(TrustStore.load, config.federation.ca_file)
        self.policy.config = config
        self.settings = s2s_settings(self.server, self.policy, self.settings.secret)
        self.enforce()

    def peers_changed(self, kind: str, domain: str, peers: list[str]) -> None:
        """An edit-whitelist / edit-blacklist took effect: streams it forbids now close."""
        allow, block = self.policy.allow.get(domain, ()), self.policy.block.get(domain, ())
        if kind == "allow":
            self.policy.set_lists(domain, peers, list(block))
        else:
            self.policy.set_lists(domain, list(allow), peers)
        self.enforce()

    def enforce(self) -> None:
        """Close every stream the policy no longer allows (both directions)."""
        for peer in list(self.peers.values()):
            if not self.policy.allows(peer.local, peer.remote):
                if peer.link is not None:
                    peer.link.close()
                router = self.server.router
                error = StanzaError("not-allowed", f"federation with {peer.remote} ended")
                while peer.queue:
                    router.bounce(peer.queue.popleft(), error)
        for conn in list(self.inbound):
            stream = conn.stream
            assert isinstance(stream, S2SInStream)
            local = stream.domain or ""
            refused = [d for d in stream.authenticated if not self.policy.allows(local, d)]
            if refused:
                text = f"{local} no longer federates with {', '.join(sorted(refused))}"
                conn.close(StreamError("policy-violation", text))
                self.inbound.discard(conn)  # gone for routing and listing at once

    def close_domain(self, remote: str) -> int:
        """Close every stream with `remote` (both directions); how many were closed."""
        closed = 0
        for peer in list(self.peers.values()):
            if peer.remote == remote and peer.link is not None:
                peer.link.close()
                closed += 1
        for conn in list(self.inbound):
            if conn.info.get("peer") == remote:
                conn.close(StreamError("policy-violation", f"federation with {remote} ended"))
                self.inbound.discard(conn)
                closed += 1
        return closed

    def close_all(self) -> None:
        for peer in self.peers.values():
            if peer.connecting is not None:
                peer.connecting.cancel()
            if peer.link is not None:
                peer.link.close()


# ---- checking peers as this server sees them (vinesctl check --federation) -----------------------


class _ProbePolicy:
    def allows(self, local: str, remote: str) -> bool:
        return True

    def dialback(self, remote: str) -> bool:
        return True  # go on past an unverified certificate: the check reports it


class PeerProbe:
    """What an `OutboundLink` needs of its owner, for one check of one peer: our certificate
    for `local`, the trust store this server uses, no dialback table worth keeping."""

    def __init__(self, config: Config, trust: TrustStore) -> None:
        self.config = config
        self.trust = trust
        self.correlation = Correlation()
        self.settings = S2SSettings(
            domains=frozenset(config.domains),
            preauth_limits=ParserLimits(65536, 4096, 64, 64),
            limits=ParserLimits(65536, 4096, 64, 64),
            policy=_ProbePolicy(),
            secret=secrets.token_bytes(32),
        )

    def certificate(self, domain: str):
        conf = self.config.domains[domain]
        return conf.certificate, conf.key

    def forget_verify(self, conn: StreamConnection) -> None:
        """An inbound stream closed: no answer for it is awaited any more."""
        for stream_id in [k for k, c in self._waiting_verify.items() if c is conn]:
            del self._waiting_verify[stream_id]

    def verified(self, answer: DialbackVerified) -> None:
        return None

    def link_lost(self, link: OutboundLink) -> None:
        return None


@dataclass
class PeerCheck:
    """One allowlisted peer as this server would see it."""

    domain: str
    local: str
    dialback: bool  # opted in: an unverified certificate is not the end
    targets: list[str] = field(default_factory=list)  # endpoints in the order tried
    error: str | None = None  # DNS, connection or TLS failure
    address: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    certificate: str | None = None  # "verified" or why not
    identity: str | None = None
    detail: str | None = None


async def check_peer(
    config: Config, trust: TrustStore, local: str, remote: str, timeout: float = 10.0
) -> PeerCheck:
    """Resolve `remote` as the server would (static route, SRV, fallback), connect to the first
    target that answers, STARTTLS or direct TLS presenting our certificate for `local`, and
    judge the peer's certificate for its domain with the server's own trust store."""
    conf = config.federation.peer(remote)
    result = PeerCheck(remote, local, conf.dialback)
    static = (conf.host, conf.port) if conf.host else None
    try:
        targets = await asyncio.wait_for(resolve.endpoints(remote, static=static), timeout)
    except resolve.PeerNotFound as exc:
        result.error = str(exc)
        return result
    except TimeoutError:
        result.error = "DNS timed out"
        return result
    result.targets = [
        f"{t.label} ({'direct TLS' if t.direct_tls else 'STARTTLS'})" for t in targets
    ]
    owner = PeerProbe(config, trust)
    reasons: list[str] = []
    async for endpoint, link in connect_each(owner, Peer(local, remote), targets, timeout, reasons):
        try:
            await asyncio.wait_for(link.judged.wait(), timeout)
        except TimeoutError:
            reasons.append(f"{endpoint.label}: timed out")
            link.close()
            continue
        link.close()
        if "certificate" not in link.info:
            why = link.info.get("error", "closed before TLS")
            reasons.append(f"{endpoint.label}: {why}")
            continue
        info = link.info
        result.address = str(info.get("address"))
        result.tls_version = _str(info.get("tls_version"))
        result.cipher = _str(info.get("cipher"))
        result.certificate = _str(info.get("certificate"))
        result.identity = _str(info.get("identity"))
        result.detail = _str(info.get("detail"))
        return result
    result.error = "; ".join(reasons) or f"no target for {remote}"
    return result


def _str(value: object) -> str | None:
    return str(value) if value else None


async def check_federation(config: Config, timeout: float = 10.0) -> list[PeerCheck]:
    """Every peer of `[federation] allow` (and the peers tables), checked from our first
    hosted domain."""
    trust = TrustStore.load(config.federation.ca_file)
    local = sorted(config.domains)[0]
    peers = sorted(set(config.federation.allow) | set(config.federation.peers))
    return list(
        await asyncio.gather(*(check_peer(config, trust, local, p, timeout) for p in peers))
    )
