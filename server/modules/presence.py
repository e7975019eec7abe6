"""Presence and subscriptions (RFC 6121 sections 3 and 4).

Outbound processing happens for stanzas a local client sends; inbound processing for stanzas
addressed to a local account. Subscription state lives in the roster item (subscription, ask,
approved) plus the table of inbound requests awaiting an answer.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from vines_server.core.api import ModuleAPI
from vines_server.core.sessions import Session
from vines_server.core.turns import in_turns
from vines_server.modules.roster import push, put_item
from vines_server.storage.base import RosterItem
from vines_server.storage.stanzas import parse_stored, storable
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.jid import JID
from vines_server.xmpp.ns import PRESENCE
from vines_server.xmpp.stanza import error_reply, make, serialize

SUBSCRIPTION = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
# (state, event) -> new subscription; state 'none'|'to'|'from'|'both'
GRANT_FROM = {"none": "from", "to": "both"}
GRANT_TO = {"none": "to", "from": "both"}
REVOKE_FROM = {"from": "none", "both": "to"}
REVOKE_TO = {"to": "none", "both": "from"}

# A plain `<presence/>`, as many clients announce themselves: one element shared by every
# session that sent one, instead of a copy each (0.3 KiB of every idle session, issue 14). A
# session's presence is replaced, never changed in place (the presence feed relies on it too),
# and whoever sends it on copies it and sets its own `from`.
AVAILABLE = make(PRESENCE)


class SubscribeBudget:
    """XEP-0205 "limit subscription requests": each account may send at most `per_minute`
    subscribe requests in any minute (a bucket that refills evenly), so one account cannot spam
    a thousand strangers' rosters. Only accounts that spent some of it are remembered."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._spent: dict[JID, tuple[float, float]] = {}  # account -> (tokens used, at)
        self._prune_at = 1024

    def take(self, account: JID, now: float) -> bool:
        used, at = self._spent.get(account, (0.0, now))
        used = max(0.0, used - (now - at) * self.per_minute / 60.0)
        if used + 1 > self.per_minute:
            self._spent[account] = (used, now)
            return False
        self._spent[account] = (used + 1, now)
        if len(self._spent) > self._prune_at:  # forget accounts whose bucket has refilled
            self._spent = {a: v for a, v in self._spent.items() if v[1] > now - 60.0}
            self._prune_at = max(1024, 2 * len(self._spent))
        return True


def setup(api: ModuleAPI) -> None:
    budget = SubscribeBudget(api.config.limits.subscriptions_per_minute)

    async def handle(stanza: Element, to: JID | None, origin: Session | None) -> bool:
        await process(stanza, to, origin)
        return True  # presence to the hosted domains is this module's

    async def process(stanza: Element, to: JID | None, origin: Session | None) -> None:
        ptype = stanza.get("type")
        if origin is None:
            if to is not None:
                await inbound(api, stanza, to)
            return
        if to is None:
            if ptype in (None, "unavailable"):
                await broadcast(api, origin, stanza)
            return  # probes and subscriptions need a `to`; drop quietly
        if ptype == "subscribe" and not budget.take(origin.jid.bare, time.monotonic()):
            text = (
                f"at most {budget.per_minute} subscription requests per minute "
                "(limits.subscriptions_per_minute)"
            )
            too_many = StanzaError(
                "unexpected-request", text, type="wait", app=(ns.XMPP_ERRORS, "too-many-stanzas")
            )
            api.deliver(error_reply(stanza, too_many), origin)
            return
        if ptype in SUBSCRIPTION:
            try:
                await outbound_subscription(api, origin.jid.bare, to.bare, ptype, stanza)
            except StanzaError as err:  # the roster is full: the sending session learns why
                api.deliver(error_reply(stanza, err), origin)
        elif ptype in (None, "unavailable"):
            if ptype is None:
                limit = api.config.limits.directed_presences
                if str(to) not in origin.directed and len(origin.directed) >= limit:
                    # each is remembered until unavailable, then sent unavailable presence
                    text = f"directed presence to at most {limit} JIDs (limits.directed_presences)"
                    error = error_reply(stanza, StanzaError("not-acceptable", text))
                    api.deliver(error, origin)
                    return
                if not origin.directed:
                    origin.directed = set()
                origin.directed.add(str(to))
            elif origin.directed:
                origin.directed.discard(str(to))
            await send(api, stanza, to)
        # clients do not send probes (RFC 6121 4.3): the server does

    async def closed(session: Session) -> None:
        if session.available:
            unavailable = make(PRESENCE, {"type": "unavailable", "from": str(session.jid)})
            await broadcast(api, session, unavailable)

    api.on("presence", handle)
    api.on("session/closed", closed)
    api.feature(ns.PRE_APPROVAL, server=True)


async def send(api: ModuleAPI, stanza: Element, to: JID) -> None:
    """Presence leaving a local user, through the router: a local account comes back to this
    module as inbound presence (no origin), anything else goes where the router decides."""
    stanza.set("to", str(to))
    await api.route(stanza)


async def send_presence(api: ModuleAPI, user: JID, contact: JID, ptype: str) -> None:
    stanza = make(PRESENCE, {"type": ptype, "from": str(user)})
    await send(api, stanza, contact)


# ---- outbound (a local user sends) -------------------------------------------------------


async def broadcast(api: ModuleAPI, session: Session, stanza: Element) -> None:
    """Available or unavailable presence without `to` (RFC 6121 4.2, 4.4, 4.5)."""
    user = session.jid.bare
    initial = stanza.get("type") is None and not session.available
    if stanza.get("type") is None:
        session.presence = _kept(stanza)
        prio = stanza.findtext(ns.q(ns.CLIENT, "priority"))
        try:
            session.priority = max(-128, min(127, int(prio))) if prio else 0
        except ValueError:
            session.priority = 0
    else:
        session.presence = None
    # observers (the admin presence feed) see the change in the same step as the state
    api.emit("presence/changed", session, stanza)
    others = [s for s in api.sessions.resources(user) if s is not session and s.available]
    if stanza.get("type") == "unavailable" and not others:
        await api.storage.record_logout(
            str(user), datetime.now(UTC), stanza.findtext(ns.q(ns.CLIENT, "status"))
        )
    roster = await api.storage.get_roster(str(user))
    targets = {item.jid for item in roster if item.subscription in ("from", "both")}
    if stanza.get("type") == "unavailable":
        targets |= session.directed
        session.directed = frozenset()
    async for target in in_turns(targets):
        await send(api, _copy_from(stanza, session.jid), JID.parse(target))
    for other in api.sessions.resources(user):  # the user's other resources see it too
        if other is not session and other.available:
            api.deliver(_copy_from(stanza, session.jid, to=other.jid), other)
    if initial:
        await on_initial(api, session, roster)


async def on_initial(api: ModuleAPI, session: Session, roster: list[RosterItem]) -> None:
    user = session.jid.bare
    async for item in in_turns(roster):  # probe the contacts we are subscribed to
        if item.subscription in ("to", "both"):
            probe = make(PRESENCE, {"type": "probe", "from": str(session.jid)})
            await send(api, probe, JID.parse(item.jid))
    for other in api.sessions.available(user):
        if other is not session and other.presence is not None:
            api.deliver(_copy_from(other.presence, other.jid, to=session.jid), session)
    for contact, xml in await api.storage.get_pending_in(str(user)):
        try:
            request = parse_stored(xml, api.config.limits)
        except StreamError as err:  # the request itself is not lost: it goes without payload
            api.log.warning(
                "subscription request from %s to %s unreadable (%s)", contact, user, err
            )
            request = make(PRESENCE, {"type": "subscribe", "from": contact})
        request.set("to", str(user))
        api.deliver(request, session)
    await api.fire("presence/initial", session)


async def outbound_subscription(
    api: ModuleAPI, user: JID, contact: JID, ptype: str, stanza: Element
) -> None:
    storage = api.storage
    item = await storage.get_roster_item(str(user), str(contact))
    changed: RosterItem | None = None
    forward = True
    if ptype == "subscribe":
        item = item or RosterItem(str(contact))
        if item.subscription in ("none", "from") and not item.ask:
            changed = replace(item, ask=True)
    elif ptype == "unsubscribe":
        if item is not None and (item.subscription in ("to", "both") or item.ask):
            changed = replace(
                item, subscription=REVOKE_TO.get(item.subscription, item.subscription), ask=False
            )
    elif ptype == "subscribed":
        pending = {c for c, _ in await storage.get_pending_in(str(user))}
        if str(contact) in pending:
            await storage.remove_pending_in(str(user), str(contact))
            item = item or RosterItem(str(contact))
            changed = replace(
                item,
                subscription=GRANT_FROM.get(item.subscription, item.subscription),
                approved=False,
            )
        elif item is None or item.subscription in ("none", "to"):
            # Pre-approval (RFC 6121 3.4): remember it, tell nobody yet.
            changed = replace(item or RosterItem(str(contact)), approved=True)
            forward = False
        else:
            forward = False
    elif ptype == "unsubscribed":
        pending = {c for c, _ in await storage.get_pending_in(str(user))}
        if str(contact) in pending:
            await storage.remove_pending_in(str(user), str(contact))
        if item is not None and (item.subscription in ("from", "both") or item.approved):
            changed = replace(
                item,
                subscription=REVOKE_FROM.get(item.subscription, item.subscription),
                approved=False,
            )
        elif str(contact) not in pending:
            forward = False
    if changed is not None:
        await put_item(api, str(user), changed)
        push(api, user, changed)
    if not forward:
        return
    out = make(PRESENCE, {"type": ptype, "from": str(user)})
    for child in stanza:  # keep <status/> and extensions, drop nothing the user wrote
        out.append(copy.deepcopy(child))
    await send(api, out, contact)
    if ptype == "subscribed":  # the new subscriber gets our current presence at once
        for session in api.sessions.available(user):
            await send(api, _copy_from(session.presence, session.jid), contact)
    elif ptype == "unsubscribed":
        for session in api.sessions.available(user):
            gone = make(PRESENCE, {"type": "unavailable", "from": str(session.jid)})
            await send(api, gone, contact)


# ---- inbound (to a local account) --------------------------------------------------------


async def inbound(api: ModuleAPI, stanza: Element, to: JID) -> None:
    ptype = stanza.get("type")
    sender = JID.parse(stanza.get("from", ""))
    if to.local is None:  # the domain itself has presence (modules/load.py)
        await api.fire("presence/server", stanza, to)
        return
    user = to.bare
    exists = bool(api.sessions.resources(user)) or bool(await api.storage.get_account(str(user)))
    if not exists:
        if ptype == "probe":  # RFC 6121 8.5.1: an unknown account is unsubscribed
            reply = make(PRESENCE, {"type": "unsubscribed", "from": str(user)})
            await send(api, reply, sender.bare)
        return  # otherwise silence: no harvesting (T-07, T-08)
    if ptype in SUBSCRIPTION:
        await inbound_subscription(api, stanza, user, sender.bare, ptype)
    elif ptype == "probe":
        item = await api.storage.get_roster_item(str(user), str(sender.bare))
        if item is not None and item.subscription in ("from", "both"):
            for session in api.sessions.available(user):
                await send(api, _copy_from(session.presence, session.jid), sender)
    elif ptype in (None, "unavailable"):
        if to.resource is not None:
            session = api.sessions.get(to)
            if session is not None:
                api.deliver(stanza, session)
            return
        for session in api.sessions.available(user):
            api.deliver(_copy_from(stanza, sender, to=session.jid), session)
    elif ptype != "error":
        api.bounce(stanza, StanzaError("bad-request"))


async def inbound_subscription(
    api: ModuleAPI, stanza: Element, user: JID, contact: JID, ptype: str
) -> None:
    storage = api.storage
    item = await storage.get_roster_item(str(user), str(contact))
    changed: RosterItem | None = None
    deliver = True
    if ptype == "subscribe":
        if item is not None and item.subscription in ("from", "both"):
            await send_presence(api, user, contact, "subscribed")  # already granted: auto-reply
            return
        if item is not None and item.approved:
            changed = replace(item, subscription=GRANT_FROM[item.subscription], approved=False)
            await storage.put_roster_item(str(user), changed)
            push(api, user, changed)
            await send_presence(api, user, contact, "subscribed")
            for session in api.sessions.available(user):
                await send(api, _copy_from(session.presence, session.jid), contact)
            return
        await storage.add_pending_in(str(user), str(contact), pending_request(api, stanza, contact))
    elif ptype == "subscribed":
        if item is None or not item.ask:
            return  # nothing was asked: ignore (RFC 6121 3.1.6)
        changed = replace(
            item, subscription=GRANT_TO.get(item.subscription, item.subscription), ask=False
        )
    elif ptype == "unsubscribe":
        await storage.remove_pending_in(str(user), str(contact))
        if item is not None and item.subscription in ("from", "both"):
            changed = replace(item, subscription=REVOKE_FROM[item.subscription])
    elif ptype == "unsubscribed":
        if item is not None and (item.subscription in ("to", "both") or item.ask):
            changed = replace(
                item, subscription=REVOKE_TO.get(item.subscription, item.subscription), ask=False
            )
        else:
            deliver = False
    if changed is not None:
        await storage.put_roster_item(str(user), changed)
        push(api, user, changed)
    if deliver:
        for session in api.sessions.available(user):
            api.deliver(_copy_from(stanza, contact, to=session.jid), session)


def pending_request(api: ModuleAPI, stanza: Element, contact: JID) -> str:
    """The stored form of an inbound subscription request, re-delivered at each login until
    answered; one whose stored form would be out of bounds is kept without its payload."""
    request = make(PRESENCE, {"type": "subscribe", "from": str(contact)})
    for child in stanza:
        request.append(copy.deepcopy(child))
    xml = serialize(request).decode()
    if storable(xml, api.config.limits):
        return xml
    api.log.info(
        "subscription request from %s kept without its payload (%d bytes)", contact, len(xml)
    )
    return serialize(make(PRESENCE, {"type": "subscribe", "from": str(contact)})).decode()


def _kept(stanza: Element) -> Element:
    """What a session keeps of the available presence it sent (its stamped `from` aside)."""
    if len(stanza) or (stanza.text or "").strip() or stanza.attrib.keys() - {"from"}:
        return copy.deepcopy(stanza)
    return AVAILABLE


def _copy_from(stanza: Element, sender: JID, to: JID | None = None) -> Element:
    out = copy.deepcopy(stanza)
    out.set("from", str(sender))
    if to is not None:
        out.set("to", str(to))
    elif "to" in out.attrib:
        del out.attrib["to"]
    return out
