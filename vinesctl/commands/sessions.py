"""`vinesctl sessions`: every client session of the server with its details (our own
`urn:vinesctl:admin#sessions` node: JID, address, TLS version and cipher, SASL mechanism, since,
stream state)."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import emit, json_option


@click.command("sessions")
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
    """List the server's sessions with their TLS, SASL and address details."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.sessions(client, conn.domain)

    from vinesctl.render.admin import sessions_view

    emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, sessions_view)
