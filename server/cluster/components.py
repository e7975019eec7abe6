"""Components across the cluster: a component connected to one node is reachable from every
node. Each node records the components connected to it in the directory at each heartbeat (so
within one heartbeat of their connecting; a purge removes a dead node's), and removes one at
once when it goes; a node whose own stream for a component domain is not connected forwards the
stanza to the node that has it, which hands it to its component."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from vines_server.core.components import ComponentRoute
from vines_server.core.faults import describe
from vines_server.xmpp.stanza import serialize

if TYPE_CHECKING:
    from vines_server.cluster.node import ClusterNode

log = logging.getLogger(__name__)


class ClusterComponent:
    """One component domain's destination on a cluster node."""

    def __init__(self, route: ComponentRoute, node: ClusterNode) -> None:
        self.route = route  # this node's own stream for the domain, connected or not
        self.node = node

    async def send(self, stanza: Element) -> None:
        node = self.node
        if self.route.link is None and node.connected:
            try:
                where = await node.directory.component(self.route.config.domain)
            except Exception as exc:  # then as if it were not connected anywhere
                log.debug("component lookup failed: %s", describe(exc))
                where = None
            if where is not None and where != node.node:
                node.channel.publish(where, {"k": "route", "xml": serialize(stanza).decode()})
                return
        await self.route.send(stanza)  # here, or the bounce of a component that is away


def connected_here(routes: dict[str, ComponentRoute]) -> list[str]:
    return sorted(d for d, r in routes.items() if r.link is not None)
