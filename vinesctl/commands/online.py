"""`vinesctl online [--details]`: who is online (XEP-0133 get-online-users-list)."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import emit, json_option


@click.command("online")
@click.option("--details", is_flag=True, help="Show each session (resource, status, address).")
@click.option(
    "--max",
    "max_items",
    type=click.Choice(["25", "50", "75", "100", "150", "200", "none"]),
    default="none",
    show_default=True,
    help="At most this many users (the XEP's choices).",
)
@timeout_option
@connect_options
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    details: bool,
    max_items: str,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """List the users online on the profile's domain."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        users = await admin.users_list(client, conn.domain, "online", max_items, details)
        return {"users": users}

    from vinesctl.render.admin import online_table

    emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, online_table)
