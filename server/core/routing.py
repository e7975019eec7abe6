"""The one place that decides where a stanza goes (RFC 6120 section 10, RFC 6121 section 8).

Every stanza passes through here, whoever made it: a client (`route()` with its session), a
module or the server itself (`route()`, or `send()` for replies, bounces, announcements and load
presence). The decision looks at the stanza's `to`:

- a domain we host: the event bus. Modules claim what is addressed to them (`iq/server/NS`,
  `iq/account/NS`, `presence`, `message/server`, `message/account`: delivery to users is the
  message module); an iq to a full JID goes to that session; what nobody claims is answered;
- a component's domain (or a JID on it): that component (`components`, filled by the component
  listener);
- any other domain: the federation seam (`remote`); closed by default, `not-allowed` with no DNS
  lookup (design decision 9);
- otherwise an error back to the sender. Nothing disappears silently except where RFC 6121
  prescribes silence (presence to an unknown account, errors, iq results nobody awaits).

A handler that raises, or a store that fails, answers the stanza that caused it
(`core/faults.py`) and leaves the sender's stream open.

A session whose output queue is full (its client does not read, design decision 12) gets no
more than it can hold: messages for it are kept offline and delivered once its output drains
(or at its next login), iqs to it bounce `resource-constraint`, presence is coalesced by its
connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from xml.etree.ElementTree import Element

from vines_server.core.faults import describe, fault_error
from vines_server.core.pending import Pending
from vines_server.storage.base import QuotaExceeded
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.ns import IQ, MESSAGE, PRESENCE
from vines_server.xmpp.stanza import error_reply, serialize

if TYPE_CHECKING:
    from vines_server.core.hooks import Hooks
    from vines_server.core.sessions import Confirm, Session, SessionRegistry
    from vines_server.storage.base import Storage

log = logging.getLogger(__name__)


Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Destination(Protocol):
    """Somewhere beyond this process's sessions and modules that takes stanzas: a component
    (XEP-0114), a remote domain's server-to-server link, another cluster node."""

    async def send(self, stanza: Element) -> None: ...


class Directory(Protocol):
    """Where an account's resources on other cluster nodes are (server/cluster/): refreshed
    for the accounts a stanza concerns before it is routed; those resources then are sessions
    like local ones, each one more destination, reached over its node's channel."""

    async def refresh(self, *bares: JID) -> None: ...


class Router:
    def __init__(
        self,
        domains: frozenset[str],
        sessions: SessionRegistry,
        storage: Storage,
        hooks: Hooks,
        spawn: Spawn,
        offline_quota: int,
        offline_bytes: int,
    ) -> None:
        self.domains = domains
        self.sessions = sessions
        self.storage = storage
        self.hooks = hooks
        self.spawn = spawn
        self.offline_quota = offline_quota
        self.offline_bytes = offline_bytes
        # component domain -> its destination, for every configured component (core/components.py)
        self.components: dict[str, Destination] = {}
        self.remote: Destination | None = None  # the federation seam; None = closed domain
        self.cluster: Directory | None = None  # other cluster nodes' sessions; None = one node
        # stanzas routed in and delivered out, by qualified tag (the metrics' kinds)
        self.kinds_in: Counter[str] = Counter()
        self.kinds_out: Counter[str] = Counter()
        # messages on their way to offline storage, stored in arrival order by one task
        self._unsent: deque[tuple[Element, JID, asyncio.Future[None]]] = deque()
        self._storing_unsent = False
        self._diverted: set[Session] = set()  # sessions whose messages went offline meanwhile
        # messages stored until their recipient confirms them (design decision 6)
        self.pending = Pending(storage, sessions, spawn)

    @property
    def stanzas_in(self) -> int:
        return self.kinds_in.total()

    @property
    def stanzas_out(self) -> int:
        return self.kinds_out.total()

    # ---- the routing decision -------------------------------------------------------------

    async def route(self, stanza: Element, origin: Session | None = None) -> None:
        """Routes a stanza whose `from` is already trustworthy (stamped or server-made);
        `origin` is the client session it came from, None for what the server made."""
        self.kinds_in[stanza.tag] += 1
        try:
            await self._route(stanza, origin)
        except StanzaError as err:  # a handler refused it with a precise condition
            self.bounce(stanza, err)
        except Exception as exc:
            # one line with the cause; the traceback only at debug level
            log.error(
                "%s from %s to %s failed: %s",
                _local(stanza.tag),
                stanza.get("from"),
                stanza.get("to"),
                describe(exc),
            )
            log.debug("the failure", exc_info=exc)
            self.bounce(stanza, fault_error(exc))

    async def _route(self, stanza: Element, origin: Session | None) -> None:
        to_attr = stanza.get("to")
        try:
            to = JID.parse(to_attr) if to_attr else None
        except JIDError:
            if stanza.tag != PRESENCE:  # presence to a malformed JID is dropped (T-03)
                self.bounce(stanza, StanzaError("jid-malformed"))
            return
        if self.cluster is not None:
            await self._look_up(to, origin)
        if to is not None and to.domain not in self.domains:
            if stanza.tag == PRESENCE and origin is not None:
                # a user's outbound presence (subscription states, directed presence) is the
                # presence module's whatever the contact's domain; it routes it on from there
                await self.hooks.dispatch("presence", stanza, to, origin)
                return
            await self._route_beyond(stanza, to)
        elif stanza.tag == PRESENCE:
            # unclaimed presence is dropped: RFC 6121 prescribes silence for presence
            await self.hooks.dispatch("presence", stanza, to, origin)
        elif stanza.tag == MESSAGE:
            await self._route_message(stanza, to, origin)
        elif stanza.tag == IQ:
            await self._route_iq(stanza, to, origin)

    async def _look_up(self, to: JID | None, origin: Session | None) -> None:
        """The recipient's and the sender's resources on other nodes (the sender's own other
        resources get its presence and roster pushes)."""
        assert self.cluster is not None
        bares = [] if origin is None else [origin.jid.bare]
        if to is not None and to.local is not None and to.domain in self.domains:
            bares.append(to.bare)
        if bares:
            await self.cluster.refresh(*dict.fromkeys(bares))

    async def _route_beyond(self, stanza: Element, to: JID) -> None:
        """A domain this server does not host: a component, or a remote domain."""
        component = self.components.get(to.domain)
        if component is not None:
            await component.send(stanza)
            self.kinds_out[stanza.tag] += 1
        elif self.remote is not None:
            await self.remote.send(stanza)
        else:
            # Closed domain: no DNS lookup, no connection; the sender learns why.
            text = f"federation with {to.domain} is not allowed"
            self.bounce(stanza, StanzaError("not-allowed", text, type="cancel"))

    async def _route_message(self, stanza: Element, to: JID | None, origin: Session | None) -> None:
        if to is None and origin is not None:
            to = origin.jid.bare  # RFC 6120 10.3.1: no `to` is the sender's own account
        if to is None or to.local is None:
            claimed = await self.hooks.dispatch("message/server", stanza, to, origin)
            if not claimed and stanza.get("type") not in ("error", "headline"):
                self.bounce(stanza, StanzaError("service-unavailable"))
            return
        # delivery to users (RFC 6121 8.5) is the message module's, so features hook in
        if not await self.hooks.dispatch("message/account", stanza, to, origin):
            self.bounce(stanza, StanzaError("service-unavailable"))

    async def _route_iq(self, stanza: Element, to: JID | None, origin: Session | None) -> None:
        itype = stanza.get("type")
        if itype in ("result", "error"):
            if to is not None and to.resource is not None and to.local is not None:
                session = self.sessions.get(to)
                if session is not None:
                    self.deliver(stanza, session)
                    return
            # answers to the server's own requests; any other is ignored (RFC 6120 8.2.3)
            await self.hooks.dispatch("iq/response", stanza)
            return
        if itype not in ("get", "set") or not stanza.get("id") or len(stanza) != 1:
            self.bounce(stanza, StanzaError("bad-request"))
            return
        if to is not None and to.resource is not None:
            session = self.sessions.get(to) if to.local is not None else None
            if session is None:  # no such resource, or domain/resource: nothing lives there
                self.bounce(stanza, StanzaError("service-unavailable"))
            else:
                self.deliver(stanza, session)
            return
        sender = JID.parse(stanza.get("from", ""))
        target = to.bare if to is not None else sender.bare
        scope = "server" if target.local is None else "account"
        payload = stanza[0].tag
        namespace = payload[1:].split("}", 1)[0] if payload.startswith("{") else ""
        if not await self.hooks.dispatch(f"iq/{scope}/{namespace}", stanza, target, origin):
            self.bounce(stanza, StanzaError("service-unavailable"))

    # ---- what the server says -------------------------------------------------------------

    def send(self, stanza: Element, origin: Session | None = None) -> None:
        """A stanza the server made (a reply, a bounce, an announcement, load presence), routed
        like any other. A live local session gets it at once, in order with what that session
        is sent next; anything else goes through `route()`: a module, a component, a remote
        domain, or the message module's offline storage."""
        try:
            to = JID.parse(stanza.get("to", ""))
        except JIDError:
            log.warning("dropped a server-made %s to %r", _local(stanza.tag), stanza.get("to"))
            return
        if origin is not None and origin.jid == to:
            self._send(stanza, origin)  # the answer to its own stanza, even when congested
            return
        if to.domain in self.domains and to.local is not None:
            if to.resource is not None:
                session = self.sessions.get(to)
                if session is not None:
                    if stanza.get("type") == "error":  # a bounce answers its own stanza
                        self._send(stanza, session)
                    else:
                        self.deliver(stanza, session)
                    return
            elif stanza.get("type") == "error":  # a bounce to a bare JID: its sessions
                targets = self.sessions.available(to)
                for session in targets:
                    self._send(stanza, session)
                if targets:
                    return
        self.spawn(self.route(stanza))

    def bounce(self, stanza: Element, err: StanzaError) -> None:
        """Error back to the sender, wherever it is (never in answer to an error or an iq
        result: no loops, RFC 6120 8.3.1)."""
        if stanza.get("type") == "error" or (stanza.tag == IQ and stanza.get("type") == "result"):
            return
        if stanza.tag == PRESENCE and stanza.get("type") not in (None, "subscribe"):
            return  # presence errors are only worth sending for requests
        if not stanza.get("from"):
            return
        self.send(error_reply(stanza, err))

    # ---- delivery to a local session ------------------------------------------------------

    def deliver(self, stanza: Element, session: Session, confirm: Confirm | None = None) -> None:
        """`confirm`: the stanza is in the store, to be deleted once `session` confirms it
        (written, or acknowledged); a congested session does not get it, it stays stored."""
        if session.congested and stanza.tag != PRESENCE:  # presence is coalesced instead
            if confirm is None:
                self._deliver_congested(stanza, session)
            return
        self._send(stanza, session, confirm)

    def _send(self, stanza: Element, session: Session, confirm: Confirm | None = None) -> None:
        """Out even when `session`'s output is full: for answers to its own stanzas (replies,
        bounces), bounded because it sends no more while its output is full."""
        self.kinds_out[stanza.tag] += 1
        session.send(stanza, confirm)

    def _deliver_congested(self, stanza: Element, session: Session) -> None:
        if stanza.tag == MESSAGE and keeps_offline(stanza):
            self.keep_offline(stanza, session)
        elif stanza.tag == IQ and stanza.get("type") in ("get", "set"):
            text = f"{session.jid} is not reading its stream; retry later"
            self.bounce(stanza, StanzaError("resource-constraint", text, type="wait"))
        else:  # a headline, an error or an iq result: not worth keeping (RFC 6121 8.5.2)
            log.info("dropped a %s to %s: its output is full", _local(stanza.tag), session.jid)

    # ---- offline storage ------------------------------------------------------------------

    async def store_offline(self, stanza: Element, bare: JID) -> None:
        """Keep a message for the account's next delivery; over a quota it bounces."""
        stanza.set("to", str(bare) if stanza.get("to") is None else stanza.get("to", ""))
        xml, now = serialize(stanza).decode(), datetime.now(UTC)
        try:
            await self.storage.store_offline(
                str(bare), xml, now, self.offline_quota, self.offline_bytes
            )
        except QuotaExceeded as exc:  # XEP-0160: a full queue is service-unavailable
            key = "offline_quota" if exc.quota == "messages" else "offline_bytes"
            text = f"offline storage is full (limits.{key})"
            self.bounce(stanza, StanzaError("service-unavailable", text))

    def keep_offline(self, stanza: Element, *sessions: Session) -> asyncio.Future[None]:
        """Store a message that its (full or closing) sessions could not take, in arrival
        order; they get it when their output drains, or at the next login. The future is done
        once it is stored, so a sender can be made to wait."""
        done = asyncio.get_running_loop().create_future()
        self._unsent.append((stanza, sessions[0].jid.bare, done))
        self._diverted.update(sessions)
        if not self._storing_unsent:
            self._storing_unsent = True
            self.spawn(self._store_unsent())
        return done

    async def _store_unsent(self) -> None:
        try:
            while self._unsent:
                stanza, bare, done = self._unsent.popleft()
                try:
                    await self.store_offline(stanza, bare)
                except Exception as exc:
                    log.error("could not keep a message for %s offline: %s", bare, describe(exc))
                    self.bounce(stanza, fault_error(exc))
                finally:
                    if not done.done():  # its sender may have gone (cancelled) meanwhile
                        done.set_result(None)
        finally:
            self._storing_unsent = False
        for session in list(self._diverted):
            if not session.congested:
                self.drained(session)

    def drained(self, session: Session) -> None:
        """`session`'s output has room again: messages kept for it meanwhile are delivered
        (by the offline module), once all of them are stored."""
        if session not in self._diverted or self._storing_unsent:
            return
        self._diverted.discard(session)
        if self.sessions.get(session.jid) is session:
            self.spawn(self.hooks.fire("output/drained", session))


def keeps_offline(message: Element) -> bool:
    """Message types that offline storage keeps (RFC 6121 8.5.2)."""
    return message.get("type", "normal") in ("normal", "chat")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
