"""`vinesctl stats`: server statistics (our `urn:vinesctl:admin#stats` node: uptime,
connections, stanza rates, memory, store size) and the XEP-0133 user counts the server offers."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import emit, json_option


@click.command("stats")
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
    """Show the server's statistics and user counts."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.stats(client, conn.domain, timeout)

    from vinesctl.render.admin import stats_view

    emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, stats_view)
