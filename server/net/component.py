"""Component streams (XEP-0114) on the generic connection: the kind that claims a component's
domain after its handshake and hands its stanzas to the router."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vines_server.xmpp import actions
from vines_server.xmpp.component import (
    ClaimDomain,
    ComponentSettings,
    ComponentStanza,
    ComponentStream,
)

if TYPE_CHECKING:
    from vines_server.config import Config
    from vines_server.net.connection import StreamConnection
    from vines_server.server import Server
    from vines_server.xmpp.c2s import C2SSettings

log = logging.getLogger("vines_server.component")


def component_settings(config: Config, c2s: C2SSettings) -> ComponentSettings:
    """The same parser limits, restarts and pipelining bounds as client streams."""
    return ComponentSettings(
        domains=frozenset(config.components),
        preauth_limits=c2s.preauth_limits,
        limits=c2s.limits,
        stream_restarts=c2s.stream_restarts,
        pipelined=c2s.pipelined,
        secrets={domain: c.secret for domain, c in config.components.items()},
    )


class ComponentKind:
    def listener(self, direct_tls: bool) -> str:
        return "component-tls" if direct_tls else "component"

    def new_stream(self, server: Server, direct_tls: bool) -> ComponentStream:
        return ComponentStream(server.component_settings, tls=direct_tls)

    async def execute(self, conn: StreamConnection, action: actions.Action) -> None:
        stream = conn.stream
        assert isinstance(stream, ComponentStream)
        components = conn.server.components
        match action:
            case ClaimDomain(domain) as request:
                refusal = components.claim(domain, conn)
                if refusal is None:
                    conn.negotiated()
                    conn.metered = False
                    conn.info["component"] = domain
                else:
                    log.info("component %s refused from %s: %s", domain, conn.peer, refusal)
                await conn.execute(stream.claimed(request, refusal))
            case actions.AuthFailed():
                log.info("component handshake failed from %s", conn.peer)
                conn.auth_failed()
            case ComponentStanza(element):
                route = components.routes[str(conn.info["component"])]
                route.stanzas_in += 1
                if await conn.output_room():
                    await conn.server.router.route(element)

    def lost(self, conn: StreamConnection) -> None:
        domain = conn.info.get("component")
        if domain is not None and conn.server.components.release(str(domain), conn):
            conn.server.spawn(conn.server.host.hooks.fire("component/closed", domain))


COMPONENT = ComponentKind()
