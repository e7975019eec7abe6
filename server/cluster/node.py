"""This process as one node of a cluster: the Redis client, the directory kept current with this
node's sessions, the channel's two tasks, liveness, and what arrives from other nodes.

A stanza for a resource on another node is routed like any other: the router refreshes the
accounts it concerns from the directory (`refresh`), the modules deliver to that resource's
proxy session (cluster/remote.py), and its `RemoteLink` publishes it here (`_send`). A chat or
normal message is in the store before it is published (the proxy is `managed`, so the message
module holds it, decision 6); the receiving node delivers it and, once its client confirmed it,
sends an ack back, and the sending node deletes it from the store. Whatever is not acked stays
stored: delivered at the recipient's next login.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from vines_server.cluster.channel import Channel, Message
from vines_server.cluster.components import ClusterComponent, connected_here
from vines_server.cluster.directory import Directory, Entry, listed_info
from vines_server.cluster.liveness import Liveness
from vines_server.cluster.remote import ClusterSessions, remote_node
from vines_server.cluster.status import NodeStatus
from vines_server.core.sessions import Confirm, Session
from vines_server.storage.stanzas import parse_stored
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.ns import IQ, MESSAGE, PRESENCE
from vines_server.xmpp.stanza import make, serialize

if TYPE_CHECKING:
    from vines_server.server import Server

log = logging.getLogger("vines_server.cluster")

REDIS_CONNECTIONS = 32  # per node, its channel listener's subscription among them


def redis_client(url: str, password: str | None, timeout: float, wait: float) -> Any:
    """The client; the password from the file wins over the URL's. Neither is ever logged:
    errors name the host, not the URL.

    A burst (hundreds of logins, each refreshing the directory) needs more commands in flight
    than connections are worth opening: they wait up to `wait` for one of REDIS_CONNECTIONS
    (redis-py's default pool raises at its limit instead, which looked like Redis going away
    and refused cross-node stanzas for a heartbeat)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        timeout=wait,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # once more on a new connection: after Redis restarted, pooled ones are dead
        retry=Retry(NoBackoff(), 1),
        **({"password": password} if password is not None else {}),
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool


def redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


class ClusterNode:
    def __init__(self, server: Server) -> None:
        config = server.config.cluster
        assert config.redis is not None
        self.server = server
        self.node = config.node
        self.config = config
        password = None
        if config.password_file is not None:
            password = config.password_file.read_text().strip()
        self.redis = redis_client(config.redis, password, max(config.heartbeat, 0.5), config.ttl)
        self.directory = Directory(self.redis, self.node, config.ttl)
        self.channel = Channel(self.redis, self.node, self._failed)
        self.sessions = ClusterSessions(
            self.node,
            lambda: server.config.limits,
            self._send,
            self._kick,
            # what it did not confirm stays stored, no longer tracked as on its way
            lambda proxy: server.router.pending.closed(proxy),
        )
        self.liveness = Liveness(
            self.directory,
            config.heartbeat,
            self._info,
            lambda: connected_here(server.components.routes),
            self._register_all,
            self._purged,
        )
        self._acks: dict[str, tuple[float, Confirm]] = {}  # token -> (sent at, confirm)
        self._serial = itertools.count(1)
        self._dirty: set[JID] = set()  # full JIDs whose directory entry must be written
        self._announce: set[JID] = set()  # ... and whose presence changed (for the feeds)
        self._feeds: Callable[[], bool] = lambda: False  # a presence feed runs here
        self._feeds_lock = asyncio.Lock()
        self._claims: dict[JID, tuple[asyncio.Lock, list[int]]] = {}  # bare -> lock, waiting
        self._claiming: set[JID] = set()  # full JIDs whose bind is claiming their entry
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = False

    @property
    def connected(self) -> bool:
        return bool(self.liveness.connected)

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        hooks = self.server.host.hooks
        hooks.on("session/bound", self._changed)
        hooks.on("session/closed", self._changed)
        hooks.on("presence/changed", lambda session, _stanza: self._changed(session, True))
        hooks.on("component/closed", self._component_closed)
        router = self.server.router
        for domain, route in self.server.components.routes.items():
            router.components[domain] = ClusterComponent(route, self)
        await self.liveness.beat()  # joined now, or logged as unreachable and retried
        self.listener = asyncio.create_task(
            self.channel.receiving(self._received, self.config.heartbeat)
        )
        self._beating = asyncio.create_task(self.liveness.beating())
        self._tasks += [self.listener, self._beating]
        for coro in (self.channel.sending(), self._writing()):
            self._tasks.append(asyncio.create_task(coro))
        log.info("cluster node %s on %s", self.node, redacted(self.config.redis or ""))

    async def stop(self) -> None:
        """After the streams closed: the heartbeat stops (a beat after leaving would join
        again), this node's entries and records go (while Redis is away the others purge it
        after ttl instead), then its tasks. Each step bounded: a Redis connection that is half
        gone must not hold up the shutdown."""
        self.liveness.stopped = True
        self._beating.cancel()
        await asyncio.wait([self._beating], timeout=1)
        if self.connected:
            try:
                await asyncio.wait_for(self._leave(), self.config.ttl)
            except Exception as exc:
                log.info("cluster node %s left without cleaning up: %s", self.node, exc)
        self.channel.close()
        self._stopped = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.aclose(), 1)

    async def _leave(self) -> None:
        while not self.channel.idle:  # the last presence broadcasts leave first
            await asyncio.sleep(0.01)
        for session in list(self.sessions):
            await self.directory.unregister(str(session.jid))
        await self._write()
        await self.directory.leave()

    # ---- what the rest of the server asks -------------------------------------------------

    async def nodes(self) -> list[NodeStatus]:
        return await self.directory.nodes()

    async def refresh(self, *bares: JID) -> None:
        """Mirror the accounts' resources on other nodes before a stanza about them is routed;
        while Redis is away the mirror stays as it was (sends to other nodes are refused)."""
        if not self.connected:
            return
        try:
            found = await self.directory.resources(*(str(b) for b in bares))
        except Exception as exc:
            log.debug("directory lookup failed: %s", exc)
            return
        for bare, entries in zip(bares, found, strict=True):
            self.sessions.mirror(bare.bare, entries)

    async def online(self) -> list[JID]:
        """Accounts with a session on any node, their resources mirrored; this node's own
        while Redis is away."""
        if self.connected:
            try:
                fulls = await self.directory.online()
            except Exception as exc:
                log.debug("directory listing failed: %s", exc)
            else:
                bares = set()
                for full in fulls:
                    with contextlib.suppress(JIDError):
                        bares.add(JID.parse(full.partition("/")[0]))
                bares.update(self.sessions.users())  # bound here, maybe not written yet
                await self.refresh(*bares)
                return list(bares)
        return self.sessions.users()

    async def claim(self, full: JID, info: dict[str, Any], cap: int) -> bool:
        """A bind's place in the account's `cap` sessions, decided in the directory in one
        step (design decision 4, cluster-wide); a session of `full` on another node is closed
        with conflict. False: the cap is reached. This node's binds of one account take turns
        (its own registry counts the previous one, added as soon as this returns)."""
        bare = full.bare
        lock, waiting = self._claims.setdefault(bare, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with lock:
                return await self._claim(full, info, cap)
        finally:
            waiting[0] -= 1
            if not waiting[0]:
                del self._claims[bare]

    async def _claim(self, full: JID, info: dict[str, Any], cap: int) -> bool:
        own = self.sessions.own(full.bare)
        others = sum(1 for s in own if s.jid != full)
        entry = Entry(self.node, since=time.time(), info=listed_info(info))
        if self.connected:
            self._claiming.add(full)
            try:
                replaced = await self.directory.claim(
                    str(full), entry, cap, others, others < len(own)
                )
            except Exception as exc:  # Redis went: this node decides, the writer reconciles
                log.debug("directory claim of %s failed: %s", full, exc)
                self._changed_jid(full)
            else:
                if replaced:
                    self._kick(replaced, full, StreamError("conflict", "replaced by a new session"))
                await self.refresh(full.bare)
                return replaced is not None
            finally:
                self._claiming.discard(full)
        # Redis away: this node's view (its mirror as last refreshed), not atomic
        return self.sessions.get(full) is not None or self.sessions.count(full.bare) < cap

    async def watch_presence(self, wanted: Callable[[], bool]) -> None:
        """Have the other nodes announce their users' presence changes to this one while
        `wanted()` (a presence feed runs here). Evaluated under a lock, so that the last call
        to reach Redis says what holds now, whichever order starts and stops came in."""
        self._feeds = wanted
        async with self._feeds_lock:
            try:
                await self.directory.watch_presence(wanted())
            except Exception as exc:  # Redis away: the rejoin calls this again
                log.debug("presence announcements not (un)subscribed: %s", exc)

    async def presences(self, domain: str) -> list[tuple[JID, Element, datetime]]:
        """The available resources of `domain`'s users on other nodes, as the directory holds
        them: (full JID, presence, bound since)."""
        out = []
        for bare in await self.online():
            if bare.domain != domain:
                continue
            for session in self.sessions.resources(bare):
                if remote_node(session) is not None and session.presence is not None:
                    out.append((session.jid, session.presence, session.since))
        return out

    def _announced(self, message: Message) -> None:
        """Another node's user changed presence (directory.py, `vines:presence`): the feeds
        here learn it (`cluster/presence`); this node's own are observed where they happen."""
        if message.get("node") == self.node:
            return
        try:
            full = JID.parse(str(message.get("full")))
        except JIDError:
            return
        xml = message.get("xml")
        stanza = None
        if xml is not None:
            try:
                stanza = parse_stored(str(xml), self.server.config.limits)
            except StreamError:
                stanza = None
        if stanza is None:
            stanza = make(PRESENCE, {"type": "unavailable"})
        self.server.host.hooks.emit("cluster/presence", full, stanza)

    async def _component_closed(self, domain: JID | str) -> None:
        if self.connected:
            await self.directory.release_component(str(domain))

    # ---- this node's entries in the directory ---------------------------------------------

    def _changed(self, session: Session, presence: bool = False) -> None:
        self._changed_jid(session.jid, presence)

    def _changed_jid(self, full: JID, presence: bool = False) -> None:
        self._dirty.add(full)
        if presence:
            self._announce.add(full)
        self._wake.set()

    def _register_all(self) -> None:
        self._dirty.update(s.jid for s in self.sessions)
        self._wake.set()
        self.server.spawn(self.watch_presence(self._feeds))  # the purge forgot it

    async def _writing(self) -> None:
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._write()
            except Exception:  # Redis away: written again once the beat sees it back
                await asyncio.sleep(self.config.heartbeat)
                self._wake.set()

    async def _write(self) -> None:
        """The current state of each changed session, whatever happened in between. A session
        leaves the sets before its write is awaited: a change during the write marks it again
        (discarded after the await, that change was never written)."""
        while self._dirty:
            full = next(iter(self._dirty))
            self._dirty.discard(full)
            announce = full in self._announce
            self._announce.discard(full)
            session = self.sessions.local(full)
            if session is None and full in self._claiming:
                continue  # bound again here: the claim overwrites the entry
            try:
                if session is None:
                    await self.directory.unregister(str(full), announce)
                else:
                    presence = session.presence
                    entry = Entry(
                        self.node,
                        session.available,
                        session.priority,
                        session.interested,
                        serialize(presence).decode() if presence is not None else None,
                        session.since.timestamp(),
                        listed_info(session.info),
                    )
                    await self.directory.register(str(full), entry, announce)
            except BaseException:  # not written: again at the next try
                self._dirty.add(full)
                if announce:
                    self._announce.add(full)
                raise

    def _info(self) -> dict[str, Any]:
        """This node's record for NodeStatus, written at each heartbeat."""
        self._expire_acks()
        address = next(
            (f"{li.host}:{li.port}" for li in self.server.listening if li.kind == "c2s-starttls"),
            "",
        )
        return {"address": address, "sessions": len(self.sessions), "load": self.liveness.load()}

    def _expire_acks(self) -> None:
        """Acks that never came (their node went): those messages stay stored."""
        now = time.monotonic()
        for token, (at, _) in list(self._acks.items()):
            if now - at > 10 * self.config.ttl:
                del self._acks[token]

    # ---- to other nodes --------------------------------------------------------------------

    def _send(self, node: str, to: JID, stanza: Element, confirm: Confirm | None) -> None:
        if not self.connected:
            self._refuse(stanza, confirm)
            return
        message: Message = {"k": "stanza", "to": str(to), "xml": serialize(stanza).decode()}
        if confirm is not None:
            token = f"{next(self._serial)}"
            self._acks[token] = (time.monotonic(), confirm)
            message["ack"] = token
        self.channel.publish(node, message)

    def _kick(self, node: str, to: JID, error: StreamError | None) -> None:
        kick: Message = {"k": "kick", "to": str(to)}
        if error is not None:
            kick.update(condition=error.condition, text=error.text)
        self.channel.publish(node, kick)

    def _refuse(self, stanza: Element, confirm: Confirm | None) -> None:
        """Redis is away: the sender learns to retry (nothing kept half-way: a held message
        leaves the store, its sender has the error)."""
        if stanza.tag == PRESENCE:
            return
        text = "the cluster's directory is unreachable; retry later"
        self.server.router.bounce(stanza, StanzaError("remote-server-timeout", text, type="wait"))
        if confirm is not None:
            confirm()

    def _failed(self, node: str, message: Message, why: str) -> None:
        """It did not reach `node`. A held message stays stored (its recipient's next login
        gets it); an iq or an unheld message is bounced; an absent subscriber is a hint that
        the node is dead, checked against its liveness key."""
        if message.get("k") not in ("stanza", "route"):
            return
        if message.get("ack"):
            if why == "no subscriber" and message["ack"] in self._acks:
                # its node may be alive and between two subscriptions (Redis came back, the
                # node's listener reconnects within a heartbeat): publish again while it lives
                self.server.spawn(self._republish(node, message))
                return
            self._acks.pop(message["ack"], None)
        else:
            try:
                stanza = parse_stored(message["xml"], self.server.config.limits)
            except StreamError:
                return
            if stanza.tag != PRESENCE:
                condition = (
                    "service-unavailable" if why == "no subscriber" else "remote-server-timeout"
                )
                self.server.router.bounce(stanza, StanzaError(condition, type="wait"))
        if why == "no subscriber":
            self.server.spawn(self._check(node))

    async def _republish(self, node: str, message: Message) -> None:
        """A held message that found no subscriber: again each heartbeat while its node is
        alive, for at most a ttl; then (or once the node is dead, and purged) it waits in the
        store for its recipient's next login, as for a node that vanished. It may arrive after
        messages sent later than it (order holds only while the channel does)."""
        tries = int(message.get("tries", 0)) + 1
        await asyncio.sleep(self.config.heartbeat)
        try:
            alive = await self.directory.alive(node)
        except Exception as exc:
            log.debug("liveness check of %s failed: %s", node, exc)
            alive = False
        if alive and tries * self.config.heartbeat <= self.config.ttl:
            self.channel.publish(node, {**message, "tries": tries})
            return
        self._acks.pop(message["ack"], None)
        if not alive:
            await self._check(node)

    async def _check(self, node: str) -> None:
        try:
            if not await self.directory.alive(node):
                await self.liveness.purge(node)
        except Exception as exc:
            log.debug("liveness check of %s failed: %s", node, exc)

    # ---- from other nodes ------------------------------------------------------------------

    async def _received(self, message: Message) -> None:
        kind = message.get("k")
        if kind == "presence":
            self._announced(message)
            return
        if kind == "route":  # for a component connected here
            stanza = parse_stored(str(message.get("xml")), self.server.config.limits)
            route = self.server.components.routes.get(JID.parse(stanza.get("to", "")).domain)
            if route is not None:
                await route.send(stanza)
            return
        if kind == "ack":
            _, confirm = self._acks.pop(str(message.get("t")), (0.0, None))
            if confirm is not None:
                confirm()
            return
        try:
            to = JID.parse(str(message.get("to")))
        except JIDError:
            return
        session = self.sessions.local(to)
        if kind == "kick":
            if session is not None:
                condition = message.get("condition")
                session.link.close(
                    StreamError(condition, message.get("text")) if condition else None
                )
            return
        if kind != "stanza":
            return
        stanza = parse_stored(str(message.get("xml")), self.server.config.limits)
        token, sender = message.get("ack"), str(message.get("from"))
        confirm = None
        if token:
            confirm = lambda: self.channel.publish(sender, {"k": "ack", "t": token})  # noqa: E731
        router = self.server.router
        if session is not None:
            router.deliver(stanza, session, confirm)
        elif stanza.tag == MESSAGE:
            # gone from here meanwhile: routed again (another resource, or offline storage)
            await router.route(stanza)
            if confirm is not None:
                confirm()
        elif stanza.tag == IQ and stanza.get("type") in ("get", "set"):
            router.bounce(stanza, StanzaError("service-unavailable"))

    async def _purged(self, node: str, gone: list[tuple[JID, Entry]]) -> None:
        """A dead node's users go unavailable for their contacts and their other resources
        (what their own node would have said, had it closed them)."""
        self.sessions.forget_node(node)
        storage, router = self.server.storage, self.server.router
        for full, entry in gone:
            if not entry.available:
                continue
            bare = str(full.bare)
            roster = await storage.get_roster(bare)
            targets = {i.jid for i in roster if i.subscription in ("from", "both")} | {bare}
            for target in sorted(targets):
                gone_presence = make(PRESENCE, {"type": "unavailable", "from": str(full)})
                gone_presence.set("to", target)
                await router.route(gone_presence)
