"""Software Version (XEP-0092)."""

from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.stanza import make


def setup(api: ModuleAPI) -> None:
    from vines_server import __version__

    async def version(req: IqRequest) -> Element:
        if req.type != "get":
            raise StanzaError("bad-request")
        import platform  # here: a server that is never asked keeps it out of memory (issue 14)

        query = make(ns.q(ns.VERSION, "query"))
        query.append(make(ns.q(ns.VERSION, "name"), text="Vines (vinesctl)"))
        query.append(make(ns.q(ns.VERSION, "version"), text=__version__))
        query.append(make(ns.q(ns.VERSION, "os"), text=platform.system()))
        return query

    api.iq(ns.VERSION, version, server=True)
    api.feature(ns.VERSION)
