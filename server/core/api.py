"""The module host and the API each module sees.

A module is a file in `vines_server/modules/` with `setup(api)`. Through the API it hooks events
on the one bus (stanzas addressed to it, notifications), registers iq handlers by payload
namespace, disco features and identities; it routes and sends stanzas, reads the store through
the Storage protocol, and reads configuration and who is online. It never sees a transport.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

from vines_server.core.features import Features
from vines_server.core.hooks import Hooks
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.jid import JID
from vines_server.xmpp.stanza import error_reply, make

if TYPE_CHECKING:
    from vines_server.config import Config
    from vines_server.core.components import Components
    from vines_server.core.pending import Pending
    from vines_server.core.routing import Router
    from vines_server.core.sessions import Confirm, Session, SessionRegistry
    from vines_server.server import Listening, Reloaded, Server
    from vines_server.storage.base import Storage

log = logging.getLogger(__name__)


@dataclass
class IqRequest:
    stanza: Element
    payload: Element  # the single child
    sender: JID  # full JID of the requester (stamped)
    target: JID  # the domain or a bare account JID
    origin: Session | None

    @property
    def type(self) -> str:
        return self.stanza.get("type", "")

    @property
    def to_server(self) -> bool:
        return self.target.local is None

    @property
    def own_account(self) -> bool:
        return self.target == self.sender.bare


IqHandler = Callable[[IqRequest], Awaitable[Element | None]]


class Operator:
    """What the service administration commands may do to the running server, and nothing
    more: stop or restart it, reload vines.toml, list and lift bans."""

    def __init__(self, server: Server) -> None:
        self._server = server

    @property
    def shutdown_requested(self) -> asyncio.Event:
        return self._server.shutdown_requested  # the main loop waits on it

    @property
    def restart_requested(self) -> bool:
        return self._server.restart_requested

    @restart_requested.setter
    def restart_requested(self, value: bool) -> None:
        self._server.restart_requested = value

    async def reload(self) -> Reloaded:
        return await self._server.reload()

    def bans(self) -> dict[str, float]:
        return self._server.bans()

    def unban(self, ip: str) -> bool:
        return self._server.unban(ip)


class ModuleHost:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.hooks = Hooks()
        self.features = Features()
        self.disco_nodes: dict[str, Any] = {}  # node -> provider (adhoc's command list)
        self._pending: dict[tuple[str, str], asyncio.Future[Element]] = {}
        self._ids = itertools.count(1)
        self.services: dict[str, Any] = {}  # name -> object a module shares (api.provide)
        self.hooks.on("iq/response", self.response)

    @property
    def router(self) -> Router:
        return self.server.router

    def api(self, name: str) -> ModuleAPI:
        return ModuleAPI(self, name)

    def response(self, stanza: Element) -> bool:
        """An iq result or error for the server: the answer to one of its requests, if any."""
        future = self._pending.pop((stanza.get("from", ""), stanza.get("id", "")), None)
        if future is None or future.done():
            return False
        future.set_result(stanza)
        return True

    async def request(self, iq: Element, timeout: float = 30.0) -> Element:
        """Send an iq from the server and wait for the reply matched on (to, id) (T-06)."""
        iq_id = f"vines-{next(self._ids)}"
        iq.set("id", iq_id)
        key = (iq.get("to", ""), iq_id)
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.router.send(iq)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(key, None)


class ModuleAPI:
    """What a module sees: typed, and narrow (no transport, no connection)."""

    def __init__(self, host: ModuleHost, name: str) -> None:
        self._host = host
        self.name = name
        self.log = logging.getLogger(f"vines_server.modules.{name}")

    # ---- reading the server's state --------------------------------------------------------

    @property
    def storage(self) -> Storage:
        return self._host.server.storage

    @property
    def config(self) -> Config:
        return self._host.server.config  # replaced as a whole on reload: read it each time

    @property
    def sessions(self) -> SessionRegistry:
        return self._host.server.sessions

    async def look_up(self, *bares: JID) -> None:
        """In a cluster, the accounts' resources on other nodes join `sessions` (as sessions
        whose link reaches their node); on one node there is nothing to look up."""
        cluster = self._host.server.cluster
        if cluster is not None and bares:
            await cluster.refresh(*bares)

    async def online_users(self) -> list[JID]:
        """Accounts with a bound session: on every node of a cluster, their resources looked
        up (`sessions.resources` lists them all)."""
        cluster = self._host.server.cluster
        return self.sessions.users() if cluster is None else await cluster.online()

    @property
    def domains(self) -> frozenset[str]:
        return self._host.server.domains

    @property
    def components(self) -> Components:
        """The configured external components (XEP-0114) and their state."""
        return self._host.server.components

    @property
    def features(self) -> Features:
        return self._host.features

    @property
    def disco_nodes(self) -> dict[str, Any]:
        return self._host.disco_nodes

    @property
    def operator(self) -> Operator:
        """The levers of the service administration commands (shutdown, restart, reload,
        bans); the other modules have no use for them."""
        return Operator(self._host.server)

    @property
    def pending(self) -> Pending:
        """Messages stored until their recipient confirms them (design decision 6)."""
        return self._host.router.pending

    def traffic(self) -> tuple[int, int]:
        """Stanzas routed in and delivered out since start (cumulative counters)."""
        router = self._host.router
        return router.stanzas_in, router.stanzas_out

    def connections(self) -> dict[str, int]:
        """Open connections per listener, authenticated or not."""
        counts: dict[str, int] = {}
        for conn in self._host.server.connections:
            name = str(conn.info.get("listener", "?"))
            counts[name] = counts.get(name, 0) + 1
        return counts

    def uptime(self) -> float:
        return time.monotonic() - self._host.server.started_monotonic

    def listening(self) -> list[Listening]:
        """Where the server listens (kind, host, port of each socket)."""
        return list(self._host.server.listening)

    @property
    def cluster(self) -> Any:
        """The cluster this server is a node of (`nodes()`), None for a server on its own.
        (getattr: `Server.cluster` comes with the cluster core.)"""
        return getattr(self._host.server, "cluster", None)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background; the server waits for it at shutdown."""
        self._host.server.spawn(coro)

    # ---- stanzas out: always through the router --------------------------------------------

    async def route(self, stanza: Element) -> None:
        """Route a stanza a module made (its `from` set): local, component, remote or error."""
        await self._host.router.route(stanza)

    def send(self, stanza: Element) -> None:
        """A server-made stanza (reply, announcement): now to a live local session, else routed."""
        self._host.router.send(stanza)

    def deliver(self, stanza: Element, session: Session, confirm: Confirm | None = None) -> None:
        """To one local session, respecting its output congestion (see Router.deliver)."""
        self._host.router.deliver(stanza, session, confirm)

    def bounce(self, stanza: Element, err: StanzaError) -> None:
        self._host.router.bounce(stanza, err)

    def keep_offline(self, stanza: Element, *sessions: Session) -> asyncio.Future[None]:
        return self._host.router.keep_offline(stanza, *sessions)

    async def store_offline(self, stanza: Element, bare: JID) -> None:
        await self._host.router.store_offline(stanza, bare)

    async def request(self, iq: Element, timeout: float = 30.0) -> Element:
        return await self._host.request(iq, timeout)

    def error(self, stanza: Element, err: StanzaError) -> Element:
        return error_reply(stanza, err)

    # ---- the event bus ---------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any], priority: int = 0) -> None:
        """Hook an event; a handler returning True claims it and stops the chain."""
        self._host.hooks.on(event, handler, priority)

    async def fire(self, event: str, *args: Any) -> bool:
        return await self._host.hooks.fire(event, *args)

    def emit(self, event: str, *args: Any) -> None:
        self._host.hooks.emit(event, *args)

    def iq(
        self,
        namespace: str,
        handler: IqHandler,
        *,
        server: bool = False,
        account: bool = False,
        priority: int = 0,
    ) -> None:
        """Handle iq get/set whose payload is in `namespace`, sent to the domain and/or
        accounts: `handler` returns the result's payload (or None) or raises StanzaError."""
        for scope, wanted in (("server", server), ("account", account)):
            if wanted:
                claim = _iq_claim(self._host, handler, scope == "account")
                self._host.hooks.on(f"iq/{scope}/{namespace}", claim, priority)

    def feature(self, namespace: str, *, server: bool = True, account: bool = False) -> None:
        if server:
            self._host.features.server.add(namespace)
        if account:
            self._host.features.account.add(namespace)

    def identity(self, category: str, type_: str, name: str) -> None:
        self._host.features.identities.add((category, type_, name))

    def provide(self, name: str, service: Any) -> None:
        """Share an object with the modules loaded after this one (e.g. "adhoc": the command
        registry, "admins": who administers what)."""
        if name in self._host.services:
            raise ValueError(f"{name!r} is already provided")
        self._host.services[name] = service

    def use(self, name: str) -> Any:
        """An object another module provided; fails clearly when that module is not loaded."""
        try:
            return self._host.services[name]
        except KeyError:
            raise LookupError(
                f"module {self.name!r} needs {name!r}: load the module that provides it first"
            ) from None


def _iq_claim(
    host: ModuleHost, handler: IqHandler, account: bool
) -> Callable[[Element, JID, Session | None], Awaitable[bool]]:
    """The bus handler for an iq handler: it claims the iq and answers it. A StanzaError or
    any other exception propagates: the router answers with it."""

    async def claim(stanza: Element, target: JID, origin: Session | None) -> bool:
        sender = JID.parse(stanza.get("from", ""))
        # Another user's account must exist; unknown and unwilling look alike.
        others = account and target != sender.bare
        if others and not await host.server.storage.get_account(str(target)):
            raise StanzaError("service-unavailable")
        result = await handler(IqRequest(stanza, stanza[0], sender, target, origin))
        reply = make(
            ns.IQ,
            {"type": "result", "id": stanza.get("id", ""), "to": str(sender)},
        )
        if stanza.get("to"):  # the target is what `to` names, normalised
            reply.set("from", str(target))
        if result is not None:
            reply.append(result)
        host.router.send(reply, origin)
        return True

    return claim
