"""`vinesctl components`: the server's external components (XEP-0114) through our own
`urn:vinesctl:admin#components` node: connected or not, address, since, stanzas in and out,
last presence and load."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import emit, json_option


@click.command("components")
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
    """List the server's components: connected, address, since, traffic, load."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.components(client, conn.domain)

    from vinesctl.render.admin import components_view

    emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, components_view)
