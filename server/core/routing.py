"""The one place that decides where a stanza goes (RFC 6120 section 10, RFC 6121 section 8).

`route()` looks only at the stanza's `to`: a domain we do not host goes to the federation seam
(closed by default: `not-allowed`); the domain itself and accounts go to the module handlers;
full JIDs go to their session. Modules never write to another session directly; they call
`route()` or `deliver()` here.

A session whose output queue is full (its client does not read, design decision 12) gets no
more than it can hold: messages for it are kept offline and delivered once its output drains
(or at its next login), iqs to it bounce `resource-constraint`, presence is coalesced by its
connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from vines_server.storage.base import QuotaExceeded
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.stanza import error_reply, serialize

if TYPE_CHECKING:
    from vines_server.core.api import ModuleHost
    from vines_server.core.sessions import Session, SessionRegistry
    from vines_server.storage.base import Storage

log = logging.getLogger(__name__)

MESSAGE = ns.q(ns.CLIENT, "message")
PRESENCE = ns.q(ns.CLIENT, "presence")
IQ = ns.q(ns.CLIENT, "iq")

RemoteHandler = Callable[[Element, JID], Awaitable[None]]


class Router:
    def __init__(
        self,
        domains: frozenset[str],
        sessions: SessionRegistry,
        storage: Storage,
        host: ModuleHost,
        offline_quota: int,
    ) -> None:
        self.domains = domains
        self.sessions = sessions
        self.storage = storage
        self.host = host
        self.offline_quota = offline_quota
        self.remote: RemoteHandler | None = None  # the federation seam; None = closed domain
        self.stanzas_in = 0
        self.stanzas_out = 0
        # messages on their way to offline storage, stored in arrival order by one task
        self._unsent: deque[tuple[Element, JID, asyncio.Future[None]]] = deque()
        self._storing_unsent = False
        self._diverted: set[Session] = set()  # sessions whose messages went offline meanwhile

    # ---- entry point ---------------------------------------------------------------------

    async def route(self, stanza: Element, origin: Session | None = None) -> None:
        """Routes a stanza whose `from` is already trustworthy (stamped or server-made)."""
        self.stanzas_in += 1
        to_attr = stanza.get("to")
        try:
            to = JID.parse(to_attr) if to_attr else None
        except JIDError:
            if stanza.tag != PRESENCE:  # presence to a malformed JID is dropped (T-03)
                self._bounce(stanza, StanzaError("jid-malformed"))
            return
        if to is not None and to.domain not in self.domains:
            await self._route_remote(stanza, to)
            return
        if stanza.tag == PRESENCE:
            await self.host.presence(stanza, to, origin)
        elif stanza.tag == MESSAGE:
            await self._route_message(stanza, to, origin)
        elif stanza.tag == IQ:
            await self._route_iq(stanza, to, origin)

    async def _route_remote(self, stanza: Element, to: JID) -> None:
        if self.remote is not None:
            await self.remote(stanza, to)
            return
        # Closed domain: no DNS lookup, no connection; the sender learns why.
        text = f"federation with {to.domain} is not allowed"
        self._bounce(stanza, StanzaError("not-allowed", text, type="cancel"))

    # ---- messages (RFC 6121 8.5) ---------------------------------------------------------

    async def _route_message(self, stanza: Element, to: JID | None, origin: Session | None) -> None:
        mtype = stanza.get("type", "normal")
        if to is None and origin is not None:
            to = origin.jid.bare
        if to is None or to.local is None:
            await self.host.message_to_server(stanza, origin)
            return
        if to.resource is not None:
            session = self.sessions.get(to)
            if session is not None:
                if session.congested and _keep_for_later(stanza):
                    await self.keep_offline(stanza, session)  # the sender waits for the store
                else:
                    self.deliver(stanza, session)
                return
            if mtype in ("groupchat", "error"):
                if mtype == "groupchat":
                    self._bounce(stanza, StanzaError("service-unavailable"))
                return
        await self.deliver_to_account(stanza, to.bare)

    async def deliver_to_account(self, stanza: Element, bare: JID) -> None:
        mtype = stanza.get("type", "normal")
        if mtype == "error":
            targets = []
        else:
            targets = [s for s in self.sessions.available(bare) if s.priority >= 0]
        if mtype == "groupchat":
            self._bounce(stanza, StanzaError("service-unavailable"))
            return
        if targets:
            reading = [s for s in targets if not s.congested]
            if not reading and _keep_for_later(stanza):
                await self.keep_offline(stanza, *targets)
            for session in reading:
                self.deliver(stanza, session)
            return
        if mtype in ("headline", "error"):
            return
        if not await self.storage.get_account(str(bare)):
            # Same answer whether the account is missing or merely offline elsewhere would
            # leak nothing more: the user cannot exist, so there is no presence to leak.
            self._bounce(stanza, StanzaError("service-unavailable"))
            return
        await self.store_offline(stanza, bare)

    async def store_offline(self, stanza: Element, bare: JID) -> None:
        """Keep a message for the account's next delivery; over a quota it bounces."""
        stanza.set("to", str(bare) if stanza.get("to") is None else stanza.get("to", ""))
        xml, now = serialize(stanza).decode(), datetime.now(UTC)
        max_bytes = self.host.server.config.limits.offline_bytes
        try:
            await self.storage.store_offline(str(bare), xml, now, self.offline_quota, max_bytes)
        except QuotaExceeded as exc:  # XEP-0160: a full queue is service-unavailable
            key = "offline_quota" if exc.quota == "messages" else "offline_bytes"
            text = f"offline storage is full (limits.{key})"
            self._bounce(stanza, StanzaError("service-unavailable", text))

    # ---- iq (RFC 6120 8.2.3) -------------------------------------------------------------

    async def _route_iq(self, stanza: Element, to: JID | None, origin: Session | None) -> None:
        itype = stanza.get("type")
        if itype in ("result", "error"):
            if to is not None and to.resource is not None and to.local is not None:
                session = self.sessions.get(to)
                if session is not None:
                    self.deliver(stanza, session)
                    return
            self.host.response(stanza)  # replies to server requests; anything else is dropped
            return
        if itype not in ("get", "set") or not stanza.get("id") or len(stanza) != 1:
            self._bounce(stanza, StanzaError("bad-request"))
            return
        if to is not None and to.resource is not None and to.local is not None:
            session = self.sessions.get(to)
            if session is None:
                self._bounce(stanza, StanzaError("service-unavailable"))
            else:
                self.deliver(stanza, session)
            return
        if to is not None and to.resource is not None:  # domain/resource: nothing lives there
            self._bounce(stanza, StanzaError("service-unavailable"))
            return
        await self.host.iq(stanza, to, origin)

    # ---- delivery ------------------------------------------------------------------------

    def deliver(self, stanza: Element, session: Session) -> None:
        if session.congested and stanza.tag != PRESENCE:  # presence is coalesced instead
            self._deliver_congested(stanza, session)
            return
        self._send(stanza, session)

    def _send(self, stanza: Element, session: Session) -> None:
        """Out even when `session`'s output is full: for answers to its own stanzas (replies,
        bounces), bounded because it sends no more while its output is full."""
        self.stanzas_out += 1
        session.send(stanza)

    def _deliver_congested(self, stanza: Element, session: Session) -> None:
        if stanza.tag == MESSAGE and _keep_for_later(stanza):
            self.keep_offline(stanza, session)
        elif stanza.tag == IQ and stanza.get("type") in ("get", "set"):
            text = f"{session.jid} is not reading its stream; retry later"
            self._bounce(stanza, StanzaError("resource-constraint", text, type="wait"))
        else:  # a headline, an error or an iq result: not worth keeping (RFC 6121 8.5.2)
            log.info("dropped a %s to %s: its output is full", _local(stanza.tag), session.jid)

    def keep_offline(self, stanza: Element, *sessions: Session) -> asyncio.Future[None]:
        """Store a message that its (full or closing) sessions could not take, in arrival
        order; they get it when their output drains, or at the next login. The future is done
        once it is stored, so a sender can be made to wait."""
        done = asyncio.get_running_loop().create_future()
        self._unsent.append((stanza, sessions[0].jid.bare, done))
        self._diverted.update(sessions)
        if not self._storing_unsent:
            self._storing_unsent = True
            self.host.server.spawn(self._store_unsent())
        return done

    async def _store_unsent(self) -> None:
        try:
            while self._unsent:
                stanza, bare, done = self._unsent.popleft()
                try:
                    await self.store_offline(stanza, bare)
                except Exception:
                    log.exception("could not keep a message for %s offline", bare)
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
            self.host.server.spawn(self.host.hooks.fire("output/drained", session))

    def reply(self, stanza: Element, origin: Session | None) -> None:
        """Send a server-made stanza to a local entity (the `to` is already set)."""
        to = JID.parse(stanza.get("to", ""))
        if origin is not None and origin.jid == to:
            self._send(stanza, origin)
            return
        session = self.sessions.get(to) if to.resource else None
        if session is not None:
            self.deliver(stanza, session)

    def _bounce(self, stanza: Element, err: StanzaError) -> None:
        """Error back to the sender (never in answer to an error: no loops)."""
        if stanza.get("type") == "error":
            return
        if stanza.tag == PRESENCE and stanza.get("type") not in (None, "subscribe"):
            return  # presence errors are only worth sending for requests
        sender = stanza.get("from")
        if not sender:
            return
        try:
            sender_jid = JID.parse(sender)
        except JIDError:
            return
        reply = error_reply(stanza, err)
        if sender_jid.resource:
            session = self.sessions.get(sender_jid)
            if session is not None:
                self._send(reply, session)
        else:
            for session in self.sessions.available(sender_jid):
                self._send(reply, session)

    def bounce(self, stanza: Element, err: StanzaError) -> None:
        self._bounce(stanza, err)


def _keep_for_later(message: Element) -> bool:
    """Message types that offline storage keeps (RFC 6121 8.5.2, as deliver_to_account)."""
    return message.get("type", "normal") in ("normal", "chat")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
