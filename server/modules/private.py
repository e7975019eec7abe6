"""Private XML Storage (XEP-0049): one element per namespace, readable only by its owner."""

from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.storage.base import QuotaExceeded
from vines_server.storage.stanzas import parse_stored
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.stanza import make, serialize

MAX_PRIVATE = 64 * 1024


def setup(api: ModuleAPI) -> None:
    async def private(req: IqRequest) -> Element | None:
        if not req.own_account:
            # what a missing account answers too (RFC 6121 8.5.1, 8.5.3; T-08): no harvesting
            raise StanzaError("service-unavailable")
        children = list(req.payload)
        if len(children) != 1 or not children[0].tag.startswith("{"):
            raise StanzaError("not-acceptable", "exactly one namespaced child is required")
        child = children[0]
        key = child.tag
        if key.split("}")[0][1:] in (ns.PRIVATE, ns.CLIENT, ns.SERVER):
            raise StanzaError("not-acceptable", "that namespace cannot be stored")
        user = str(req.target)
        if req.type == "get":
            stored = await api.storage.get_private(user, key)
            query = make(ns.q(ns.PRIVATE, "query"))
            query.append(parse_stored(stored, api.config.limits) if stored else make(key))
            return query
        data = serialize(child).decode()
        if len(data) > MAX_PRIVATE:
            raise StanzaError("not-acceptable", f"limited to {MAX_PRIVATE} bytes")
        quota = api.config.limits.private_bytes
        try:
            await api.storage.set_private(user, key, data, max_bytes=quota)
        except QuotaExceeded:
            text = (
                f"private storage is full: at most {quota} bytes per account (limits.private_bytes)"
            )
            raise StanzaError("not-acceptable", text) from None
        return None

    api.iq(ns.PRIVATE, private, account=True)
    api.feature(ns.PRIVATE, server=False, account=True)
