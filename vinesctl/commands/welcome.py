"""`vinesctl welcome set|delete`: the message new accounts receive (XEP-0133 set-welcome,
delete-welcome)."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import read_text, run_remote, timeout_option, warn_notes
from vinesctl.connection import connect_options


@click.group("welcome")
def command() -> None:
    """The welcome message, sent to each new account."""


@command.command("set")
@click.argument("text", required=False)
@timeout_option
@connect_options
@click.pass_context
def set_(
    ctx: click.Context,
    text: str | None,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
) -> None:
    """Set the welcome message to TEXT (or standard input, or '-')."""
    message = read_text(text, "welcome message")

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.set_welcome(client, conn.domain, message)

    warn_notes(run_remote(ctx, server, ca, insecure, False, work, timeout))
    click.echo("welcome message set")


@command.command("delete")
@timeout_option
@connect_options
@click.pass_context
def delete(
    ctx: click.Context, timeout: float, server: str | None, ca: str | None, insecure: bool
) -> None:
    """Remove the welcome message."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.delete_welcome(client, conn.domain)

    warn_notes(run_remote(ctx, server, ca, insecure, False, work, timeout))
    click.echo("welcome message deleted")
