"""Last Activity (XEP-0012) of the domain: the server's uptime in seconds."""

from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.stanza import make


def setup(api: ModuleAPI) -> None:
    async def uptime(req: IqRequest) -> Element:
        if req.type != "get":
            raise StanzaError("bad-request")
        seconds = int(api.uptime())
        return make(ns.q(ns.LAST, "query"), {"seconds": str(seconds)})

    api.iq(ns.LAST, uptime, server=True)
    api.feature(ns.LAST)
