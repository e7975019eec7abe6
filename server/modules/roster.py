"""Rosters (RFC 6121 section 2): get, set, remove, and pushes to interested resources."""

from __future__ import annotations

from dataclasses import replace
from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.core.turns import in_turns
from vines_server.storage.base import QuotaExceeded, RosterItem
from vines_server.xmpp import ns, tokens
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.jid import JID, JIDError
from vines_server.xmpp.stanza import Prewritten, make, serialize

ITEM = ns.q(ns.ROSTER, "item")
MAX_NAME = 1024
MAX_GROUPS = 64


def setup(api: ModuleAPI) -> None:
    async def handle(req: IqRequest) -> Element | None:
        if not req.own_account:
            # what a missing account answers too (RFC 6121 8.5.1, 8.5.3; T-08): no harvesting
            raise StanzaError("service-unavailable")
        user = str(req.target)
        if req.type == "get":
            if req.origin is not None:
                req.origin.interested = True
            # written out here, between turns of the event loop: up to limits.roster_items
            query = Prewritten(ns.q(ns.ROSTER, "query"))
            parts = [
                serialize(item_element(item), ns.ROSTER).decode()
                async for item in in_turns(await api.storage.get_roster(user))
            ]
            query.content = "".join(parts)
            return query
        items = req.payload.findall(ITEM)
        if len(items) != 1:
            raise StanzaError("bad-request", "a roster set carries exactly one item")
        contact, name, groups, remove = parse_item(items[0])
        existing = await api.storage.get_roster_item(user, contact)
        if remove:
            if existing is None:
                raise StanzaError("item-not-found")
            await cancel_subscriptions(api, req.target, existing)
            await api.storage.delete_roster_item(user, contact)
            push(api, req.target, RosterItem(contact, subscription="remove"))
            return None
        item = replace(existing or RosterItem(contact), name=name, groups=groups)
        await put_item(api, user, item)
        push(api, req.target, item)
        return None

    api.iq(ns.ROSTER, handle, account=True)
    api.feature(ns.ROSTER, server=False, account=False)


async def put_item(api: ModuleAPI, user: str, item: RosterItem) -> None:
    """Stores an item of `user`'s roster; a new one only while the roster is under
    `limits.roster_items` (else not-acceptable: the user must remove an item first)."""
    limit = api.config.limits.roster_items
    try:
        await api.storage.put_roster_item(user, item, max_items=limit)
    except QuotaExceeded:
        text = f"the roster is full: at most {limit} items (limits.roster_items)"
        raise StanzaError("not-acceptable", text) from None


def parse_item(el: Element) -> tuple[str, str | None, tuple[str, ...], bool]:
    try:
        contact = str(JID.parse(el.get("jid", "")).bare)
    except JIDError:
        raise StanzaError("bad-request", "the item's jid is not valid") from None
    name = el.get("name") or None
    if name is not None and len(name) > MAX_NAME:
        raise StanzaError("not-acceptable", "the name is too long")
    groups = tuple(
        dict.fromkeys((g.text or "").strip() for g in el.findall(ns.q(ns.ROSTER, "group")))
    )
    if "" in groups or len(groups) > MAX_GROUPS or any(len(g) > MAX_NAME for g in groups):
        raise StanzaError("not-acceptable", "groups must be non-empty and short")
    return contact, name, groups, el.get("subscription") == "remove"


def item_element(item: RosterItem) -> Element:
    attrs = {"jid": item.jid, "subscription": item.subscription}
    if item.name:
        attrs["name"] = item.name
    if item.ask:
        attrs["ask"] = "subscribe"
    if item.approved:
        attrs["approved"] = "true"
    el = make(ITEM, attrs)
    for group in item.groups:
        el.append(make(ns.q(ns.ROSTER, "group"), text=group))
    return el


def push(api: ModuleAPI, user: JID, item: RosterItem) -> None:
    """Roster push (RFC 6121 2.1.6) to every resource of `user` that fetched its roster."""
    for session in api.sessions.resources(user):
        if not session.interested:
            continue
        iq = make(
            ns.IQ,
            {"type": "set", "id": "push-" + tokens.token_hex(6), "to": str(session.jid)},
        )
        iq.append(make(ns.q(ns.ROSTER, "query"), children=[item_element(item)]))
        api.deliver(iq, session)


async def cancel_subscriptions(api: ModuleAPI, user: JID, item: RosterItem) -> None:
    """Removing an item cancels both directions (RFC 6121 2.5.2)."""
    from vines_server.modules.presence import send_presence  # both modules share the state machine

    if item.subscription in ("to", "both") or item.ask:
        await send_presence(api, user.bare, JID.parse(item.jid), "unsubscribe")
    if item.subscription in ("from", "both"):
        await send_presence(api, user.bare, JID.parse(item.jid), "unsubscribed")
