"""Offline messages (XEP-0160): the router stores them; here they are delivered at the next
initial presence (or when a session that was not reading drains its output), each with a
XEP-0203 delay stamp saying when the server received it.

A message leaves the store only once it is delivered (design decision 6): read, sent, and
deleted when its session confirms it, that is once its bytes are in the kernel's socket buffer
(with stream management, once the client acknowledged it). A crash, a closed connection or a
full output in between leaves the rest in the store for the next delivery; the price is that
a message may come twice after a crash (clients dedupe by id), never zero times. The store's
side of it (what is in flight to which session, grouped deletions) is `core/pending.py`.

Each message is delivered on its own: one that cannot be read back is skipped with a log line
and deleted, and never takes the others with it. A full queue (up to `limits.offline_bytes`)
is sent in chunks with a turn of the event loop between them, so one login does not stall
everyone else.
"""

from __future__ import annotations

import asyncio

from vines_server.core.api import ModuleAPI
from vines_server.core.sessions import Confirm, Session
from vines_server.storage.base import OfflineMessage
from vines_server.storage.stanzas import parse_stored
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.stanza import make

CHUNK_BYTES = 64 * 1024  # of stored XML delivered between two turns of the event loop


class OfflineDelivery:
    def __init__(self, api: ModuleAPI) -> None:
        self.api = api
        self.running: set[Session] = set()  # a delivery runs for it
        self.again: set[Session] = set()  # asked again while it ran

    async def deliver(self, session: Session) -> None:
        if session.priority < 0:
            return  # negative priority: not meant to receive messages (RFC 6121 4.7.2.3)
        if session in self.running:  # one delivery at a time keeps the order
            self.again.add(session)
            return
        self.running.add(session)
        try:
            while True:
                self.again.discard(session)
                await self._deliver(session)
                if session not in self.again:
                    return
        finally:
            self.running.discard(session)

    async def _deliver(self, session: Session) -> None:
        user = str(session.jid.bare)
        pending = self.api.pending
        done = 0
        for message in await self.api.storage.list_offline(user):
            if done >= CHUNK_BYTES:
                await asyncio.sleep(0)
                done = 0
            if self.api.sessions.get(session.jid) is not session or session.congested:
                return  # the rest stays stored: for the drained output, or the next login
            if pending.in_flight(message.id):
                continue  # on its way to one of the account's sessions already
            done += len(message.xml)
            self._send(session, message, pending.sending(user, message.id, session))

    def _send(self, session: Session, message: OfflineMessage, confirm: Confirm) -> None:
        try:
            stanza = parse_stored(message.xml, self.api.config.limits)
        except StreamError as err:
            self.api.log.warning(
                "offline message %d for %s (%d bytes) cannot be read back (%s): skipped",
                message.id,
                session.jid.bare,
                len(message.xml),
                err,
            )
            confirm()  # deleted: it would fail again at every login
            return
        stamp = message.stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        domain = session.jid.domain
        # kept again while its client was not reading: the first stamp is the true one
        if not any(d.get("from") == domain for d in stanza.iter(ns.q(ns.DELAY, "delay"))):
            delay = {"from": domain, "stamp": stamp}
            stanza.append(make(ns.q(ns.DELAY, "delay"), delay, text="Offline storage"))
        self.api.deliver(stanza, session, confirm)

    async def closed(self, session: Session) -> None:
        """Messages it left unconfirmed go to the account's other available sessions now
        (else they wait in the store for the next login)."""
        self.again.discard(session)
        if self.api.pending.closed(session):
            for other in self.api.sessions.available(session.jid.bare):
                if other is not session:
                    self.api.spawn(self.deliver(other))


def setup(api: ModuleAPI) -> None:
    offline = OfflineDelivery(api)
    api.on("presence/initial", offline.deliver)
    api.on("output/drained", offline.deliver)  # messages kept while the client was not reading
    api.on("session/closed", offline.closed)
    api.feature(ns.OFFLINE)
