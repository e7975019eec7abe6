"""Offline messages (XEP-0160): the router stores them; here they are delivered at the next
initial presence (or when a session that was not reading drains its output), each with a
XEP-0203 delay stamp saying when the server received it."""

from __future__ import annotations

from vines_server.core.api import ModuleAPI
from vines_server.core.sessions import Session
from vines_server.xmpp import ns
from vines_server.xmpp.parser import parse_fragment
from vines_server.xmpp.stanza import make


def setup(api: ModuleAPI) -> None:
    async def deliver(session: Session) -> None:
        if session.priority < 0:
            return  # negative priority: not meant to receive messages (RFC 6121 4.7.2.3)
        for message in await api.storage.pop_offline(str(session.jid.bare)):
            stanza = parse_fragment(message.xml)
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
            api.router.deliver(stanza, session)

    api.on("presence/initial", deliver)
    api.on("output/drained", deliver)  # messages kept while the client was not reading
    api.feature(ns.OFFLINE)
