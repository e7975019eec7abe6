"""`vinesctl cluster`: the nodes serving the service through our own `urn:vinesctl:admin#cluster`
node: name, c2s address, heartbeat age, alive, sessions and load (percent of one core) each. A
server on its own answers one node. Exit 1 when a node listed is not alive."""

from __future__ import annotations

import click

from vinesctl.commands.remote import show_listing, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import json_option


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
    result = show_listing(ctx, server, ca, insecure, as_json, timeout, "cluster", "cluster_view")
    if any(not node.alive for node in result.nodes):
        ctx.exit(1)
