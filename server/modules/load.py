"""The server's own presence: its load, pushed to those who subscribe to the domain JID.

Admins (and JIDs listed in `[presence] subscribers`) subscribe to the domain like to any contact.
While at least one of their sessions is online, the server samples its load every
`[presence] interval` seconds and sends a presence when the figures moved meaningfully: a
human `<status>` line and a `<load xmlns='urn:vinesctl:load:0'/>` element with the numbers.
`show` reflects load: `away` near capacity or at high CPU, `dnd` when full. Nobody watching
means no timer at all. Components (XEP-0114) are part of the service: they subscribe without
approval and keep no roster here, so a subscribe or probe from one starts its updates at once,
until it unsubscribes or disconnects. An iq get of the same element to the domain answers the
current load.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.core.sessions import Session
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.jid import JID
from vines_server.xmpp.ns import PRESENCE
from vines_server.xmpp.stanza import make

NS_LOAD = ns.LOAD


@dataclass(frozen=True)
class Load:
    online: int  # bound sessions
    users: int  # distinct accounts online
    connections: dict[str, int]  # per listener, including not yet authenticated
    stanzas_in: float  # per second over the last interval
    stanzas_out: float
    cpu: float  # percent of one core used by the server process
    memory_kib: int
    uptime: int  # seconds
    capacity: int

    @property
    def show(self) -> str | None:
        if self.online >= self.capacity:
            return "dnd"
        if self.online >= 0.8 * self.capacity or self.cpu >= 80:
            return "away"
        return None

    @property
    def status(self) -> str:
        return (
            f"{self.online} online, {self.stanzas_in + self.stanzas_out:.0f} stanzas/s, "
            f"{self.cpu:.0f}% CPU"
        )

    def element(self) -> Element:
        attrs = {k: str(v) for k, v in asdict(self).items() if k != "connections"}
        el = make(ns.q(NS_LOAD, "load"), attrs)
        for listener, count in sorted(self.connections.items()):
            el.append(
                make(ns.q(NS_LOAD, "listener"), {"name": listener, "connections": str(count)})
            )
        return el

    def differs(self, other: Load | None) -> bool:
        """Worth telling watchers: anything they would notice, not sampling noise."""
        if other is None:
            return True
        rate, old_rate = self.stanzas_in + self.stanzas_out, other.stanzas_in + other.stanzas_out
        return (
            self.online != other.online
            or self.connections != other.connections
            or self.show != other.show
            or abs(self.cpu - other.cpu) >= 5
            or abs(rate - old_rate) > max(1.0, 0.1 * old_rate)
        )


class Sampler:
    """Turns cumulative counters into rates between two samples."""

    def __init__(self, api: ModuleAPI) -> None:
        self.api = api
        self._last = (time.monotonic(), time.process_time(), *api.traffic())
        self.own = 0  # load presences we sent: not traffic, or each update would cause the next

    def sample(self) -> Load:
        api = self.api
        now, cpu = time.monotonic(), time.process_time()
        stanzas_in, stanzas_out = api.traffic()
        last_wall, last_cpu, last_in, last_out = self._last
        elapsed = max(now - last_wall, 1e-6)
        out = stanzas_out - self.own
        self._last = (now, cpu, stanzas_in, out)
        return Load(
            online=len(api.sessions),
            users=len(api.sessions.users()),
            connections=api.connections(),
            stanzas_in=round((stanzas_in - last_in) / elapsed, 1),
            stanzas_out=round((out - last_out) / elapsed, 1),
            cpu=round(100 * (cpu - last_cpu) / elapsed, 1),
            memory_kib=_rss_kib(),
            uptime=int(api.uptime()),
            capacity=api.config.presence.capacity,
        )


def _rss_kib() -> int:
    try:
        with open(f"/proc/{os.getpid()}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def setup(api: ModuleAPI) -> None:
    sampler = Sampler(api)
    # JID -> the session receiving load presence; None for a component (routed to it)
    watchers: dict[JID, Session | None] = {}
    # domains: the hosted domain each component watches (a user watches its own)
    state: dict[str, object] = {"last": None, "timer": None, "domains": {}}

    def is_component(jid: JID) -> bool:
        return jid.domain in api.components

    def may_watch(bare: JID) -> bool:
        """Admins of the JID's own domain, and JIDs listed in [presence] subscribers."""
        try:
            admins = api.use("admins")  # provided by the admin module, loaded after this one
        except LookupError:
            admins = None
        if admins is not None and admins.is_admin(bare, bare.domain):
            return True
        return str(bare) in api.config.admins + api.config.presence.subscribers

    def presence_of(load: Load, domain: str, to: JID) -> Element:
        stanza = make(PRESENCE, {"from": domain, "to": str(to)})
        if load.show:
            stanza.append(make(ns.q(ns.CLIENT, "show"), text=load.show))
        stanza.append(make(ns.q(ns.CLIENT, "status"), text=load.status))
        stanza.append(load.element())
        return stanza

    def tick() -> None:
        state["timer"] = None
        if not watchers:
            return
        load = sampler.sample()
        if load.differs(state["last"]):  # type: ignore[arg-type]
            state["last"] = load
            for jid, session in list(watchers.items()):
                tell(presence_of(load, domain_of(jid), jid), session)
        arm()

    def arm() -> None:
        if state["timer"] is None and watchers:
            loop = asyncio.get_running_loop()
            state["timer"] = loop.call_later(api.config.presence.interval, tick)

    def domain_of(jid: JID) -> str:
        return str(state["domains"].get(jid, jid.domain))  # type: ignore[union-attr]

    def tell(presence: Element, session: Session | None) -> None:
        if session is None:
            api.send(presence)  # a component: through the router
        else:
            api.deliver(presence, session)
        sampler.own += 1

    def watch(jid: JID, session: Session | None, domain: str) -> None:
        watchers[jid] = session
        if session is None:
            state["domains"][jid] = domain  # type: ignore[index]
        load = state["last"] or sampler.sample()
        tell(presence_of(load, domain, jid), session)  # type: ignore[arg-type]
        arm()

    async def subscribed_to_domain(bare: JID, domain: str) -> bool:
        item = await api.storage.get_roster_item(str(bare), domain)
        return item is not None and item.subscription in ("to", "both")

    async def on_presence(stanza: Element, to: JID) -> None:
        from vines_server.modules.presence import send_presence

        ptype = stanza.get("type")
        sender = JID.parse(stanza.get("from", ""))
        domain = JID(None, to.domain)
        if is_component(sender):
            await component_presence(ptype, sender, to)
        elif ptype == "subscribe":
            if not may_watch(sender.bare) or sender.domain != to.domain:
                await send_presence(api, domain, sender.bare, "unsubscribed")
                return
            await send_presence(api, domain, sender.bare, "subscribed")
            for session in api.sessions.available(sender.bare):
                watch(session.jid, session, to.domain)
        elif ptype == "probe":
            session = api.sessions.get(sender)
            wanted = session is not None and may_watch(sender.bare)
            if wanted and await subscribed_to_domain(sender.bare, to.domain):
                watch(session.jid, session, to.domain)
        elif ptype == "unsubscribe":
            for jid in [j for j in watchers if j.bare == sender.bare]:
                del watchers[jid]
            await send_presence(api, domain, sender.bare, "unsubscribed")

    async def component_presence(ptype: str | None, sender: JID, to: JID) -> None:
        from vines_server.modules.presence import send_presence

        domain = JID(None, to.domain)
        if ptype == "subscribe":
            await send_presence(api, domain, sender.bare, "subscribed")
            watch(sender.bare, None, to.domain)
        elif ptype == "probe":
            watch(sender.bare, None, to.domain)
        elif ptype == "unsubscribe":
            watchers.pop(sender.bare, None)
            state["domains"].pop(sender.bare, None)  # type: ignore[attr-defined]
            await send_presence(api, domain, sender.bare, "unsubscribed")

    def on_closed(session: Session) -> None:
        watchers.pop(session.jid, None)

    def on_component_closed(domain: str) -> None:
        for jid in [j for j in watchers if j.domain == domain]:
            del watchers[jid]
            state["domains"].pop(jid, None)  # type: ignore[attr-defined]

    async def answer(req: IqRequest) -> Element:
        if req.type != "get":
            raise StanzaError("bad-request")
        if not may_watch(req.sender.bare) and not is_component(req.sender):
            raise StanzaError("forbidden", "the server's load is for its administrators")
        # Rates over a short window of its own, so a one-off query neither reports an average
        # since start nor disturbs the samples watchers get.
        window = Sampler(api)
        await asyncio.sleep(min(0.5, api.config.presence.interval))
        return window.sample().element()

    api.on("presence/server", on_presence)
    api.on("session/closed", on_closed)
    api.on("component/closed", on_component_closed)
    api.iq(NS_LOAD, answer, server=True)
    api.feature(NS_LOAD)
