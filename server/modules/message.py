"""Delivery of messages to local users (RFC 6121 8.5), claimed from the router's
`message/account` event.

To a full JID: that session if it is bound; otherwise groupchat bounces, error is dropped, and
any other type is treated as if sent to the bare JID. To a bare JID: every available session of
non-negative priority; with none, offline storage for normal and chat (XEP-0160; over the quota
`service-unavailable`), silence for headline and error, and `service-unavailable` when the
account does not exist. A session whose output is full (its client does not read, design
decision 12) gets no more: messages for it are kept offline, and its sender waits until they
are stored.

With stream management on either side, a chat or normal message is stored while it goes to a
live session (`deliver_live`, design decision 6), and leaves the store once the session
confirms it; the sender's h passes it only once the commit landed.

Features that take messages first (carbons, stream management, archiving) hook the same event
with a higher priority (returning True claims the message) instead of patching the router.
"""

from __future__ import annotations

from asyncio import Future
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from vines_server.core.api import ModuleAPI
from vines_server.core.faults import describe, fault_error
from vines_server.core.routing import keeps_offline
from vines_server.core.sessions import Session
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.jid import JID
from vines_server.xmpp.stanza import serialize


def setup(api: ModuleAPI) -> None:
    async def to_account(stanza: Element, to: JID, origin: Session | None) -> bool:
        mtype = stanza.get("type", "normal")
        if to.resource is not None:
            session = api.sessions.get(to)
            if session is not None:
                if session.congested and keeps_offline(stanza):
                    await api.keep_offline(stanza, session)  # the sender waits for the store
                else:
                    await deliver_live(api, stanza, to.bare, [session], origin)
                return True
            if mtype in ("groupchat", "error"):
                if mtype == "groupchat":
                    api.bounce(stanza, StanzaError("service-unavailable"))
                return True
        await deliver_to_account(api, stanza, to.bare, origin)
        return True

    api.on("message/account", to_account)


async def deliver_to_account(
    api: ModuleAPI, stanza: Element, bare: JID, origin: Session | None = None
) -> None:
    mtype = stanza.get("type", "normal")
    if mtype == "groupchat":
        api.bounce(stanza, StanzaError("service-unavailable"))
        return
    targets = [] if mtype == "error" else api.sessions.available(bare)
    targets = [s for s in targets if s.priority >= 0]
    if targets:
        reading = [s for s in targets if not s.congested]
        if not reading and keeps_offline(stanza):
            await api.keep_offline(stanza, *targets)
        await deliver_live(api, stanza, bare, reading, origin)
        return
    if mtype in ("headline", "error"):
        return
    if not await api.storage.get_account(str(bare)):
        # Same answer whether the account is missing or merely offline elsewhere would
        # leak nothing more: the user cannot exist, so there is no presence to leak.
        api.bounce(stanza, StanzaError("service-unavailable"))
        return
    await api.store_offline(stanza, bare)


async def deliver_live(
    api: ModuleAPI, stanza: Element, bare: JID, sessions: list[Session], origin: Session | None
) -> None:
    """Design decision 6 where stream management makes promises: a chat or normal message
    from a sender whose h will confirm it, or to a session that will acknowledge it, is stored
    and deleted once one of its sessions confirms it. It goes out at once while the (grouped)
    commit runs: what confirms it to the sender waits for the commit (`Pending.durable`), and a
    session that confirms it first has it deleted when the commit lands. A crash or a session
    that ends before confirming leaves it for the next delivery, with the stamp of its arrival.
    Between two clients without stream management nothing is confirmed, so nothing is held (no
    commit per message); headlines, errors and groupchat are never kept."""
    if not sessions:
        return
    managed = (origin is not None and origin.managed) or any(s.managed for s in sessions)
    if not managed or not keeps_offline(stanza):
        for session in sessions:
            api.deliver(stanza, session)
        return
    xml = serialize(stanza).decode()
    held = api.pending.hold(str(bare), xml, datetime.now(UTC), origin)
    held.committed.add_done_callback(lambda done: _not_stored(api, stanza, done))
    for session in sessions:
        api.deliver(stanza, session, api.pending.sending_held(held, session))


def _not_stored(api: ModuleAPI, stanza: Element, committed: Future[int]) -> None:
    """The store refused it (a full disk): the sender hears so, as from the router, and its h
    passes the message only with that error (the recipient may still have it: twice, not zero)."""
    exc = None if committed.cancelled() else committed.exception()
    if exc is not None:
        api.log.error("could not store a message to %s: %s", stanza.get("to"), describe(exc))
        api.bounce(stanza, fault_error(exc))
