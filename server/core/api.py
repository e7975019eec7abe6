"""The module host and the API each module sees.

A module is a file in `vines_server/modules/` with `setup(api)`. Through the API it registers
IQ handlers by payload namespace, disco features and identities, and hook handlers; it reaches
storage, configuration, sessions and the router. The host dispatches what the router gives it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
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
    from vines_server.core.sessions import Session
    from vines_server.server import Server

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
PresenceHandler = Callable[[Element, JID | None, "Session | None"], Awaitable[None]]
MessageHandler = Callable[[Element, "Session | None"], Awaitable[None]]


class ModuleHost:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.hooks = Hooks()
        self.features = Features()
        self._iq: dict[tuple[str, str], IqHandler] = {}  # (scope, namespace) -> handler
        self.presence_handler: PresenceHandler | None = None
        self.message_handlers: list[MessageHandler] = []
        self._pending: dict[tuple[str, str], asyncio.Future[Element]] = {}
        self._ids = itertools.count(1)
        self.services: dict[str, Any] = {}  # name -> object a module shares (api.provide)

    def api(self, name: str) -> ModuleAPI:
        return ModuleAPI(self, name)

    # ---- dispatch (called by the router) --------------------------------------------------

    async def iq(self, stanza: Element, to: JID | None, origin: Session | None) -> None:
        router = self.server.router
        sender = JID.parse(stanza.get("from", ""))
        target = to.bare if to is not None else sender.bare
        payload = stanza[0]
        scope = "server" if target.local is None else "account"
        namespace = payload.tag[1:].split("}", 1)[0] if payload.tag.startswith("{") else ""
        handler = self._iq.get((scope, namespace))
        if handler is None:
            router.bounce(stanza, StanzaError("service-unavailable"))
            return
        # Another user's account must exist; unknown and unwilling look alike.
        others = scope == "account" and target != sender.bare
        if others and not await self.server.storage.get_account(str(target)):
            router.bounce(stanza, StanzaError("service-unavailable"))
            return
        request = IqRequest(stanza, payload, sender, target, origin)
        try:
            result = await handler(request)
        except StanzaError as err:
            router.bounce(stanza, err)
            return
        except Exception:
            log.exception("iq handler for %s failed", namespace)
            router.bounce(stanza, StanzaError("internal-server-error"))
            return
        reply = make(
            ns.q(ns.CLIENT, "iq"),
            {"type": "result", "id": stanza.get("id", ""), "to": str(sender)},
        )
        if to is not None:
            reply.set("from", str(to))
        if result is not None:
            reply.append(result)
        router.reply(reply, origin)

    async def presence(self, stanza: Element, to: JID | None, origin: Session | None) -> None:
        if self.presence_handler is not None:
            await self.presence_handler(stanza, to, origin)

    async def message_to_server(self, stanza: Element, origin: Session | None) -> None:
        for handler in self.message_handlers:
            await handler(stanza, origin)
        if not self.message_handlers and stanza.get("type") not in ("error", "headline"):
            self.server.router.bounce(stanza, StanzaError("service-unavailable"))

    def response(self, stanza: Element) -> None:
        future = self._pending.pop((stanza.get("from", ""), stanza.get("id", "")), None)
        if future is not None and not future.done():
            future.set_result(stanza)

    async def request(self, iq: Element, timeout: float = 30.0) -> Element:
        """Send an iq from the server and wait for the reply matched on (to, id) (T-06)."""
        iq_id = f"vines-{next(self._ids)}"
        iq.set("id", iq_id)
        key = (iq.get("to", ""), iq_id)
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.server.router.reply(iq, None)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(key, None)


class ModuleAPI:
    def __init__(self, host: ModuleHost, name: str) -> None:
        self._host = host
        self.name = name
        self.log = logging.getLogger(f"vines_server.modules.{name}")

    @property
    def server(self) -> Server:
        return self._host.server

    @property
    def storage(self) -> Any:
        return self._host.server.storage

    @property
    def config(self) -> Any:
        return self._host.server.config

    @property
    def sessions(self) -> Any:
        return self._host.server.sessions

    @property
    def router(self) -> Any:
        return self._host.server.router

    @property
    def features(self) -> Features:
        return self._host.features

    def iq(
        self, namespace: str, handler: IqHandler, *, server: bool = False, account: bool = False
    ) -> None:
        """Handle iq get/set whose payload is in `namespace`, sent to the domain and/or accounts."""
        for scope, wanted in (("server", server), ("account", account)):
            if wanted:
                if (scope, namespace) in self._host._iq:
                    raise ValueError(f"{namespace} already handled for {scope}")
                self._host._iq[(scope, namespace)] = handler

    def feature(self, namespace: str, *, server: bool = True, account: bool = False) -> None:
        if server:
            self._host.features.server.add(namespace)
        if account:
            self._host.features.account.add(namespace)

    def identity(self, category: str, type_: str, name: str) -> None:
        self._host.features.identities.add((category, type_, name))

    def on(self, event: str, handler: Callable[..., Any], priority: int = 0) -> None:
        self._host.hooks.on(event, handler, priority)

    async def fire(self, event: str, *args: Any) -> None:
        await self._host.hooks.fire(event, *args)

    def emit(self, event: str, *args: Any) -> None:
        self._host.hooks.emit(event, *args)

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

    def handle_presence(self, handler: PresenceHandler) -> None:
        self._host.presence_handler = handler

    def handle_server_message(self, handler: MessageHandler) -> None:
        self._host.message_handlers.append(handler)

    async def request(self, iq: Element, timeout: float = 30.0) -> Element:
        return await self._host.request(iq, timeout)

    def error(self, stanza: Element, err: StanzaError) -> Element:
        return error_reply(stanza, err)
