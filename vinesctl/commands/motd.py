"""`vinesctl motd set|show|delete`: the message of the day users get at login (XEP-0133
set-motd, edit-motd, delete-motd)."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import run_remote, text_setting_commands, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import emit, json_option


@click.group("motd")
def command() -> None:
    """The message of the day, sent to users when they log in."""


text_setting_commands(command, "motd", "message of the day")


@command.command("show")
@timeout_option
@connect_options
@json_option
@click.pass_context
def show(
    ctx: click.Context,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Show the current message of the day."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return {"motd": await admin.get_motd(client, conn.domain)}

    from vinesctl.render.admin import motd_view

    emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, motd_view)
