"""External components (XEP-0114) as the rest of the server sees them.

- disco#items of each hosted domain lists every configured component with its name, connected
  or not (as Prosody does), so other components and clients discover them;
- a component's presence to the server's domain JID (with `urn:vinesctl:load:0` when it has a
  load) is kept for the console and handed to the admins' presence feed (`component/presence`);
- `urn:vinesctl:admin#components` lists them for the domain's admins: connected or not,
  address, since, stanzas in and out, last presence and load.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from vines_server.core.admins import AdminState, node, result_form
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, Context, Result
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field
from vines_server.xmpp.jid import JID

COMPONENTS = node("components", ns.VINES_ADMIN)
COLUMNS = [
    ("domain", "Component"),
    ("name", "Name"),
    ("connected", "Connected"),
    ("address", "Address"),
    ("since", "Since"),
    ("stanzas_in", "Stanzas in"),
    ("stanzas_out", "Stanzas out"),
    ("show", "Presence"),
    ("load", "Load"),
]


def setup(api: ModuleAPI) -> None:
    components = api.components
    for domain, route in sorted(components.routes.items()):
        api.features.items.append((domain, None, route.config.name or None))

    def on_presence(stanza: Element, to: JID) -> None:
        sender = JID.parse(stanza.get("from", ""))
        route = components.routes.get(sender.domain)
        if route is None or route.link is None or stanza.get("type") not in (None, "unavailable"):
            return
        route.presence = stanza
        api.emit("component/presence", sender, stanza)

    def on_closed(domain: str) -> None:
        gone = Element(ns.PRESENCE, {"from": domain, "type": "unavailable"})
        api.emit("component/presence", JID(None, domain), gone)

    async def listing(ctx: Context) -> Result:
        form = result_form("Components", namespace=ns.VINES_ADMIN)
        form.reported = [Field(var, "text-single", label) for var, label in COLUMNS]
        statuses = components.statuses()
        for status in statuses:
            load = status.load or {}
            cells = {
                "domain": status.domain,
                "name": status.name,
                "connected": "true" if status.connected else "false",
                "address": status.address or "",
                "since": status.since.strftime("%Y-%m-%dT%H:%M:%SZ") if status.since else "",
                "stanzas_in": str(status.stanzas_in),
                "stanzas_out": str(status.stanzas_out),
                "show": status.show or ("available" if status.connected else ""),
                "load": " ".join(f"{k}={v}" for k, v in sorted(load.items())),
            }
            form.items.append([Field(k, None, values=[v]) for k, v in cells.items()])
        connected = sum(s.connected for s in statuses)
        return Result.info(f"{len(statuses)} components, {connected} connected", form)

    state: AdminState = api.use("admins")
    api.use("adhoc").add(Command(COMPONENTS, "List Components", listing, (), state.allow_admin))
    api.on("presence/server", on_presence, priority=10)
    api.on("component/closed", on_closed)
