"""XMPP Ping (XEP-0199): the server answers pings sent to the domain."""

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError


def setup(api: ModuleAPI) -> None:
    async def ping(req: IqRequest) -> None:
        if req.type != "get":
            raise StanzaError("bad-request")
        return None

    api.iq(ns.PING, ping, server=True)
    api.feature(ns.PING)
