"""Federation, the router's remote destination (design decision 9).

Outbound, per domain pair (local, remote), one link, reused: stanzas queue (bounded) while it
connects; resolution is `resolve.endpoints` (static route, SRV merged, hosts-file fallback);
each target gets a connect timeout. Bounces: `not-allowed` for a domain off the allowlist or
blocked (no DNS), `remote-server-not-found` when DNS or every target failed before a stream
existed, `remote-server-timeout` once a stream existed or on timeout; after a failure new
stanzas bounce at once for a short randomised period. Nothing queued is dropped without a
bounce (the router never bounces an error or a result). The policy (allowlist, blocklist,
dialback opt-ins) follows XEP-0133 edits and reloads at once and closes what it no longer allows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from vines_server.core import admins
from vines_server.net import resolve
from vines_server.net.peercert import TrustStore
from vines_server.net.s2s import OutboundLink, Peer, connect_each
from vines_server.xmpp.dialback import Correlation
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.parser import ParserLimits
from vines_server.xmpp.s2s import (
    DialbackVerified,
    DialbackVerify,
    S2SInStream,
    S2SSettings,
)

if TYPE_CHECKING:
    from vines_server.config import Config
    from vines_server.net.connection import StreamConnection
    from vines_server.server import Server


log = logging.getLogger("vines_server.s2s")

QUEUE_LIMIT = 1000  # stanzas per peer while connecting (overflow: resource-constraint, wait)
CONNECT_TIMEOUT = 10.0  # seconds per target
BOUNCE_PERIOD = (5.0, 15.0)  # seconds, randomised: after a failure new stanzas bounce at once


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
            router.kinds_out[stanza.tag] += 1
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
                stanza = peer.queue.popleft()
                peer.link.send_element(stanza)
                router.kinds_out[stanza.tag] += 1
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
