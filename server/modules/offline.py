"""Offline messages (XEP-0160): the router stores them; here they are delivered at the next
initial presence (or when a session that was not reading drains its output), each with a
XEP-0203 delay stamp saying when the server received it.

A message leaves the store only once it is delivered (design decision 6): read, sent, and
deleted when its session confirms it, that is once its bytes are in the kernel's socket buffer
(with stream management, once the client acknowledged it). A crash, a closed connection or a
full output in between leaves the rest in the store for the next delivery; the price is that
a message may come twice after a crash (clients dedupe by id), never zero times. Deletions are
grouped: one transaction per batch of confirmations.

Each message is delivered on its own: one that cannot be read back is skipped with a log line
and deleted, and never takes the others with it. A full queue (up to `limits.offline_bytes`)
is sent in chunks with a turn of the event loop between them, so one login does not stall
everyone else.
"""

from __future__ import annotations

import asyncio

from vines_server.core.api import ModuleAPI
from vines_server.core.faults import describe
from vines_server.core.sessions import Session
from vines_server.storage.base import OfflineMessage
from vines_server.storage.stanzas import parse_stored
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.stanza import make

CHUNK_BYTES = 64 * 1024  # of stored XML delivered between two turns of the event loop


class OfflineDelivery:
    def __init__(self, api: ModuleAPI) -> None:
        self.api = api
        # bare JID -> stored id -> the session it was sent to and that has not confirmed it
        self.sent: dict[str, dict[int, Session]] = {}
        self.delivered: dict[str, set[int]] = {}  # confirmed, to delete in the next batch
        self.deleting = False
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
        sent = self.sent.setdefault(user, {})
        done = 0
        for message in await self.api.storage.list_offline(user):
            if done >= CHUNK_BYTES:
                await asyncio.sleep(0)
                done = 0
            if not self._live(session) or session.congested:
                return  # the rest stays stored: for the drained output, or the next login
            owner = sent.get(message.id)
            if owner is not None and self._live(owner):
                continue  # on its way to one of the account's sessions already
            sent[message.id] = session
            done += len(message.xml)
            self._send(session, message, user)

    def _live(self, session: Session) -> bool:
        return self.api.sessions.get(session.jid) is session

    def _send(self, session: Session, message: OfflineMessage, user: str) -> None:
        def confirm() -> None:
            self.delivered.setdefault(user, set()).add(message.id)
            if not self.deleting:
                self.deleting = True
                self.api.spawn(self._delete_delivered())

        try:
            stanza = parse_stored(message.xml, self.api.config.limits)
        except StreamError as err:
            self.api.log.warning(
                "offline message %d for %s (%d bytes) cannot be read back (%s): skipped",
                message.id,
                user,
                len(message.xml),
                err,
            )
            confirm()
            return
        stamp = message.stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        domain = session.jid.domain
        # kept again while its client was not reading: the first stamp is the true one
        if not any(d.get("from") == domain for d in stanza.iter(ns.q(ns.DELAY, "delay"))):
            stanza.append(
                make(
                    ns.q(ns.DELAY, "delay"),
                    {"from": domain, "stamp": stamp},
                    text="Offline storage",
                )
            )
        self.api.deliver(stanza, session, confirm)

    async def _delete_delivered(self) -> None:
        """Group commit: what was confirmed while the previous batch was written goes next."""
        try:
            while self.delivered:
                user, ids = self.delivered.popitem()
                try:
                    await self.api.storage.delete_offline(user, ids)
                except Exception as exc:  # they stay stored: delivered again, never lost
                    self.api.log.error(
                        "could not delete %d delivered offline messages of %s: %s",
                        len(ids),
                        user,
                        describe(exc),
                    )
                sent = self.sent.get(user, {})
                for id_ in ids:
                    sent.pop(id_, None)
        finally:
            self.deleting = False

    async def closed(self, session: Session) -> None:
        """What it did not confirm may go to the account's other sessions, or the next one."""
        self.again.discard(session)
        user = str(session.jid.bare)
        sent = self.sent.get(user, {})
        for id_ in [i for i, owner in sent.items() if owner is session]:
            del sent[id_]
        if not sent and not self.api.sessions.resources(session.jid.bare):
            self.sent.pop(user, None)


def setup(api: ModuleAPI) -> None:
    offline = OfflineDelivery(api)
    api.on("presence/initial", offline.deliver)
    api.on("output/drained", offline.deliver)  # messages kept while the client was not reading
    api.on("session/closed", offline.closed)
    api.feature(ns.OFFLINE)
