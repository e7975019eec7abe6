"""What the cluster says about each node: the one typed record the admin node, `vinesctl cluster`,
`stats` and the dashboard read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeStatus:
    name: str  # the node's unique name ([cluster] node, plus its index under --nodes N)
    address: str  # where its c2s listener is, "host:port"
    heartbeat_age: float  # seconds since its liveness key was last refreshed
    alive: bool  # its liveness key exists (not yet expired)
    sessions: int  # bound c2s sessions on that node
    load: float  # its load figure, as published in its load presence (0.0 when unknown)
    pid: int  # its process id (on its own machine)
