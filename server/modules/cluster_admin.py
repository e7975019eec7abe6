"""`urn:vinesctl:admin#cluster`: the nodes serving this service, for the domain's admins (read
by `vinesctl cluster`, `vinesctl stats` and the dashboard): name, c2s address, heartbeat age,
alive, sessions, load (percent of one core) and pid of each.

A cluster (`Server.cluster`, [cluster] redis) answers from its directory; a server on its own
answers one entry from its own figures, so the console shows the same table for both.
"""

from __future__ import annotations

import os
import socket
import time

from vines_server.cluster.status import NodeStatus
from vines_server.core.admins import AdminState, node, result_form
from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, Context, Result
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field

CLUSTER = node("cluster", ns.VINES_ADMIN)
COLUMNS = [
    ("name", "Node"),
    ("address", "Address"),
    ("heartbeat_age", "Heartbeat age (seconds)"),
    ("alive", "Alive"),
    ("sessions", "Sessions"),
    ("load", "Load (% of a core)"),
    ("pid", "Process"),
]


def setup(api: ModuleAPI) -> None:
    # CPU time at the previous request: this node's load is its use since then (since start
    # for the first), the figure a cluster node publishes with each heartbeat
    last = [(time.monotonic(), time.process_time())]

    def load() -> float:
        (wall0, cpu0), now = last[0], (time.monotonic(), time.process_time())
        last[0] = now
        return round(100.0 * (now[1] - cpu0) / max(now[0] - wall0, 1e-6), 1)

    def this_node() -> NodeStatus:
        address = next(
            (f"{li.host}:{li.port}" for li in api.listening() if li.kind == "c2s-starttls"), ""
        )
        return NodeStatus(
            name=api.config.cluster.node or socket.gethostname(),
            address=address,
            heartbeat_age=0.0,
            alive=True,
            sessions=len(api.sessions),
            load=load(),
            pid=os.getpid(),
        )

    async def listing(ctx: Context) -> Result:
        cluster = api.cluster
        nodes = await cluster.nodes() if cluster is not None else [this_node()]
        form = result_form("Cluster nodes", namespace=ns.VINES_ADMIN)
        form.reported = [Field(var, "text-single", label) for var, label in COLUMNS]
        for status in sorted(nodes, key=lambda n: n.name):
            cells = {
                "name": status.name,
                "address": status.address,
                "heartbeat_age": f"{status.heartbeat_age:.1f}",
                "alive": "true" if status.alive else "false",
                "sessions": str(status.sessions),
                "load": f"{status.load:.1f}",
                "pid": str(status.pid),
            }
            form.items.append([Field(k, None, values=[v]) for k, v in cells.items()])
        alive = sum(n.alive for n in nodes)
        return Result.info(f"{len(nodes)} nodes, {alive} alive", form)

    state: AdminState = api.use("admins")
    api.use("adhoc").add(Command(CLUSTER, "List Cluster Nodes", listing, (), state.allow_admin))
