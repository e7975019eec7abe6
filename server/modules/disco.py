"""Service discovery (XEP-0030) for the domain and for every account.

Features and identities come from the modules that implement them (`api.feature`, `api.identity`);
nodes can be answered by other modules through the `disco/info-node` and `disco/items-node`
providers registered on `api.disco_nodes`.

An account answers another entity only if it shares its presence with it (XEP-0030 section 8):
to anyone else it looks like a missing account, `service-unavailable` (RFC 6121 8.5.1; T-08).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.forms import Field, Form
from vines_server.xmpp.stanza import make

SERVERINFO = "http://jabber.org/network/serverinfo"


def setup(api: ModuleAPI) -> None:
    api.identity("server", "im", "Vines")
    api.feature(ns.DISCO_INFO, server=True, account=True)
    api.feature(ns.DISCO_ITEMS, server=True, account=True)

    async def info(req: IqRequest) -> Element:
        await may_see(api, req)
        if req.type != "get":
            raise StanzaError("bad-request")
        node = req.payload.get("node")
        query = make(ns.q(ns.DISCO_INFO, "query"), {"node": node} if node else None)
        if node:
            provider = api.disco_nodes.get(node)
            if provider is None:
                raise StanzaError("item-not-found")
            identities, features = await provider.info(req)
        elif req.to_server:
            identities = sorted(api.features.identities)
            features = sorted(api.features.server)
        else:
            identities = [("account", "registered", "")]
            features = sorted(api.features.account)
        for category, type_, name in identities:
            attrs = {"category": category, "type": type_}
            if name:
                attrs["name"] = name
            query.append(make(ns.q(ns.DISCO_INFO, "identity"), attrs))
        for feature in features:
            query.append(make(ns.q(ns.DISCO_INFO, "feature"), {"var": feature}))
        if req.to_server and not node:
            query.append(contact_addresses(api, req.target.domain).to_element())
        return query

    async def items(req: IqRequest) -> Element:
        await may_see(api, req)
        if req.type != "get":
            raise StanzaError("bad-request")
        node = req.payload.get("node")
        query = make(ns.q(ns.DISCO_ITEMS, "query"), {"node": node} if node else None)
        if node:
            provider = api.disco_nodes.get(node)
            if provider is None:
                raise StanzaError("item-not-found")
            entries = await provider.items(req)
        elif req.to_server:
            entries = list(api.features.items)
        else:
            entries = []
            if req.own_account:  # a user's own resources (XEP-0030 section 4)
                entries = [(str(s.jid), None, None) for s in api.sessions.resources(req.target)]
        for jid, item_node, name in entries:
            attrs = {"jid": jid}
            if item_node:
                attrs["node"] = item_node
            if name:
                attrs["name"] = name
            query.append(make(ns.q(ns.DISCO_ITEMS, "item"), attrs))
        return query

    api.iq(ns.DISCO_INFO, info, server=True, account=True)
    api.iq(ns.DISCO_ITEMS, items, server=True, account=True)


def contact_addresses(api: ModuleAPI, domain: str) -> Form:
    """XEP-0157: the domain's administrators as its contact addresses (XEP-0128 extended info),
    so people and checkers know whom to reach, as Prosody does by default."""
    admins = sorted(a for a in api.config.admins if a.endswith("@" + domain))
    return Form(
        "result",
        fields=[
            Field("FORM_TYPE", "hidden", values=[SERVERINFO]),
            Field("admin-addresses", "list-multi", values=[f"xmpp:{a}" for a in admins]),
        ],
    )


async def may_see(api: ModuleAPI, req: IqRequest) -> None:
    """Refuses a request about another's account unless it shares presence with the sender."""
    if req.to_server or req.own_account:
        return
    item = await api.storage.get_roster_item(str(req.target), str(req.sender.bare))
    if item is None or item.subscription not in ("from", "both"):
        raise StanzaError("service-unavailable")
