"""Offline messages (XEP-0160): the router stores them; here they are delivered at the next
initial presence (or when a session that was not reading drains its output), each with a
XEP-0203 delay stamp saying when the server received it.

Each message is delivered on its own: one that cannot be read back is skipped with a log line
and never takes the others with it. A full queue (up to `limits.offline_bytes`) is flushed in
chunks with a turn of the event loop between them, so one login does not stall everyone else;
if the session ends during the flush, what it did not get goes back to the store.
"""

from __future__ import annotations

import asyncio

from vines_server.core.api import ModuleAPI
from vines_server.core.sessions import Session
from vines_server.storage.base import OfflineMessage
from vines_server.storage.stanzas import parse_stored
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.stanza import make

CHUNK_BYTES = 64 * 1024  # of stored XML delivered between two turns of the event loop


def setup(api: ModuleAPI) -> None:
    async def deliver(session: Session) -> None:
        if session.priority < 0:
            return  # negative priority: not meant to receive messages (RFC 6121 4.7.2.3)
        user = str(session.jid.bare)
        messages = await api.storage.pop_offline(user)
        done = 0
        for i, message in enumerate(messages):
            if done >= CHUNK_BYTES:
                await asyncio.sleep(0)
                done = 0
                if api.sessions.get(session.jid) is not session:
                    await keep(api, user, messages[i:])
                    return
            done += len(message.xml)
            deliver_one(api, session, message)

    api.on("presence/initial", deliver)
    api.on("output/drained", deliver)  # messages kept while the client was not reading
    api.feature(ns.OFFLINE)


def deliver_one(api: ModuleAPI, session: Session, message: OfflineMessage) -> None:
    try:
        stanza = parse_stored(message.xml, api.config.limits)
    except StreamError as err:
        api.log.warning(
            "offline message %d for %s (%d bytes) cannot be read back (%s): skipped",
            message.id,
            session.jid.bare,
            len(message.xml),
            err,
        )
        return
    stamp = message.stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    domain = session.jid.domain
    # kept again while its client was not reading: the first stamp is the true one
    if not any(d.get("from") == domain for d in stanza.iter(ns.q(ns.DELAY, "delay"))):
        stanza.append(
            make(ns.q(ns.DELAY, "delay"), {"from": domain, "stamp": stamp}, text="Offline storage")
        )
    api.deliver(stanza, session)


async def keep(api: ModuleAPI, user: str, messages: list[OfflineMessage]) -> None:
    """Back to the store, without quotas: they were within them when they came."""
    for message in messages:
        await api.storage.store_offline(user, message.xml, message.stamp)
