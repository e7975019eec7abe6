"""Entity Time (XEP-0202): UTC, so the answer reveals nothing about the host's zone."""

from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.stanza import make


def setup(api: ModuleAPI) -> None:
    async def entity_time(req: IqRequest) -> Element:
        if req.type != "get":
            raise StanzaError("bad-request")
        now = datetime.now(UTC)
        el = make(ns.q(ns.TIME, "time"))
        el.append(make(ns.q(ns.TIME, "tzo"), text="+00:00"))
        el.append(make(ns.q(ns.TIME, "utc"), text=now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"))
        return el

    api.iq(ns.TIME, entity_time, server=True)
    api.feature(ns.TIME)
