"""The one place that decides where a stanza goes (RFC 6120 section 10, RFC 6121 section 8).

`route()` looks only at the stanza's `to`: a domain we do not host goes to the federation seam
(closed by default: `not-allowed`); the domain itself and accounts go to the module handlers;
full JIDs go to their session. Modules never write to another session directly; they call
`route()` or `deliver()` here.
"""

from __future__ import annotations

import logging
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
            for session in targets:
                self.deliver(stanza, session)
            return
        if mtype in ("headline", "error"):
            return
        if not await self.storage.get_account(str(bare)):
            # Same answer whether the account is missing or merely offline elsewhere would
            # leak nothing more: the user cannot exist, so there is no presence to leak.
            self._bounce(stanza, StanzaError("service-unavailable"))
            return
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
        self.stanzas_out += 1
        session.send(stanza)

    def reply(self, stanza: Element, origin: Session | None) -> None:
        """Send a server-made stanza to a local entity (the `to` is already set)."""
        to = JID.parse(stanza.get("to", ""))
        if origin is not None and origin.jid == to:
            self.deliver(stanza, origin)
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
                self.deliver(reply, session)
        else:
            for session in self.sessions.available(sender_jid):
                self.deliver(reply, session)

    def bounce(self, stanza: Element, err: StanzaError) -> None:
        self._bounce(stanza, err)
