"""`vinesctl cluster`: the nodes serving the service through our own `urn:vinesctl:admin#cluster`
node: name, c2s address, heartbeat age, alive, sessions and load (percent of one core) each. A
server on its own answers one node. Exit 1 when a node listed is not alive."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import emit, json_option


@click.command("cluster")
@timeout_option
@connect_options
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """List the server's cluster nodes: address, heartbeat age, alive, sessions, load."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.cluster(client, conn.domain)

    from vinesctl.render.admin import cluster_view

    result = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
    emit(result, as_json, cluster_view)
    if any(not node.alive for node in result.nodes):
        ctx.exit(1)
