"""External components (XEP-0114) as routing destinations, and what the server knows of them.

Every configured component domain is a destination in the router from the start, connected or
not: while its component is away, messages and iqs to it bounce `remote-server-timeout` (wait)
and presence is dropped (RFC 6120 allows silence for presence). At most one stream serves a
domain; a second one is refused (`conflict = "kick_new"`, as Prosody) or replaces the first
(`"kick_old"`). A component that does not read its stream gets no more than its output queue
holds: messages and iqs to it bounce `resource-constraint` (wait) meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.ns import PRESENCE

if TYPE_CHECKING:
    from vines_server.config import ComponentConfig

log = logging.getLogger(__name__)


class ComponentLink(Protocol):
    """The stream that serves a component (the connection)."""

    peer: str

    @property
    def closing(self) -> bool: ...

    @property
    def output_full(self) -> bool: ...

    def send_element(self, element: Element) -> None: ...

    def close(self, error: StreamError | None = None) -> None: ...


@dataclass
class ComponentStatus:
    """One configured component, as the console shows it."""

    domain: str
    name: str
    connected: bool
    address: str | None  # the peer's ip:port while connected
    since: datetime | None  # when it connected (or last went away)
    stanzas_in: int
    stanzas_out: int
    show: str | None  # its last presence to the server: None (available), away, dnd...
    load: dict[str, str] | None  # the attributes of its last urn:vinesctl:load:0, if any


class ComponentRoute:
    """The destination of one component domain."""

    def __init__(self, config: ComponentConfig, bounce: Callable[[Element, StanzaError], None]):
        self.config = config
        self._bounce = bounce
        self.link: ComponentLink | None = None
        self.since: datetime | None = None
        self.stanzas_in = 0
        self.stanzas_out = 0
        self.presence: Element | None = None  # its last presence to the server

    async def send(self, stanza: Element) -> None:
        if self.link is None or self.link.closing:  # gone, or going: nothing would reach it
            if stanza.tag != PRESENCE:
                text = f"the component {self.config.domain} is not connected; retry later"
                self._bounce(stanza, StanzaError("remote-server-timeout", text, type="wait"))
            return
        if self.link.output_full and stanza.tag != PRESENCE:  # presence is coalesced instead
            # a component that does not read its stream is not queued for without bound
            text = f"the component {self.config.domain} is not reading its stream; retry later"
            self._bounce(stanza, StanzaError("resource-constraint", text, type="wait"))
            return
        self.stanzas_out += 1
        self.link.send_element(stanza)

    def status(self) -> ComponentStatus:
        load, show = None, None
        if self.presence is not None and self.link is not None:
            show = self.presence.findtext(ns.q(ns.CLIENT, "show")) or None
            if self.presence.get("type") == "unavailable":
                show = "unavailable"
            element = self.presence.find(ns.q(ns.LOAD, "load"))
            load = dict(element.attrib) if element is not None else None
        return ComponentStatus(
            self.config.domain,
            self.config.name,
            self.link is not None,
            self.link.peer if self.link is not None else None,
            self.since,
            self.stanzas_in,
            self.stanzas_out,
            show,
            load,
        )


class Components:
    """Configured components by domain, and which stream serves each."""

    def __init__(
        self,
        configs: dict[str, ComponentConfig],
        bounce: Callable[[Element, StanzaError], None],
    ) -> None:
        self.routes = {domain: ComponentRoute(c, bounce) for domain, c in configs.items()}

    def __contains__(self, domain: str) -> bool:
        return domain in self.routes

    def claim(self, domain: str, link: ComponentLink) -> StreamError | None:
        """`link` would serve `domain`: None when it does now, else why it may not."""
        route = self.routes[domain]
        old = route.link
        if old is not None:
            if route.config.conflict == "kick_new":
                return StreamError("conflict", f"{domain} is already connected")
            old.close(StreamError("conflict", "replaced by a new connection"))
        route.link, route.since, route.presence = link, datetime.now(UTC), None
        log.info("component %s connected from %s", domain, link.peer)
        return None

    def release(self, domain: str, link: ComponentLink) -> bool:
        """`link` is gone; True when it was the one serving `domain`."""
        route = self.routes.get(domain)
        if route is None or route.link is not link:
            return False
        route.link, route.since, route.presence = None, datetime.now(UTC), None
        log.info("component %s disconnected", domain)
        return True

    def presences(self) -> list[tuple[ComponentStatus, Element]]:
        """Connected components that told the server their presence, with it."""
        return [
            (route.status(), route.presence)
            for _, route in sorted(self.routes.items())
            if route.link is not None and route.presence is not None
        ]

    def statuses(self) -> list[ComponentStatus]:
        return [self.routes[d].status() for d in sorted(self.routes)]
