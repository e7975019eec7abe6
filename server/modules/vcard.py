"""vcard-temp (XEP-0054): a user sets their own vCard; anyone may read one that exists. An
account without a vCard answers others as a missing account does (XEP-0054 3.1 asks for the
same error in both cases; T-08): `service-unavailable`, as RFC 6121 8.5.1 gives the latter."""

from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.storage.stanzas import parse_stored
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.stanza import make, serialize

MAX_VCARD = 64 * 1024


def setup(api: ModuleAPI) -> None:
    async def vcard(req: IqRequest) -> Element | None:
        user = str(req.target)
        if req.type == "get":
            stored = await api.storage.get_vcard(user)
            if stored:
                return parse_stored(stored, api.config.limits)
            if not req.own_account:
                raise StanzaError("service-unavailable")
            return make(ns.q(ns.VCARD, "vCard"))
        if not req.own_account:
            raise StanzaError("service-unavailable")
        data = serialize(req.payload).decode()
        if len(data) > MAX_VCARD:
            raise StanzaError("not-acceptable", f"a vCard is limited to {MAX_VCARD} bytes")
        await api.storage.set_vcard(user, data)
        return None

    api.iq(ns.VCARD, vcard, account=True)
    api.feature(ns.VCARD, server=True, account=True)
