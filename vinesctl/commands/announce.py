"""`vinesctl announce [--subject S] [TEXT]`: a message to everyone online (XEP-0133 announce)."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import read_text, run_remote, timeout_option, warn_notes
from vinesctl.connection import connect_options


@click.command("announce")
@click.argument("text", required=False)
@click.option("--subject", help="Subject of the announcement (where the server supports one).")
@timeout_option
@connect_options
@click.pass_context
def command(
    ctx: click.Context,
    text: str | None,
    subject: str | None,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
) -> None:
    """Send TEXT (or standard input, or '-') to every user online on the profile's domain."""
    message = read_text(text, "announcement")

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.announce(client, conn.domain, message, subject)

    outcome = run_remote(ctx, server, ca, insecure, False, work, timeout)
    warn_notes(outcome)
    click.echo(outcome.text or "announcement sent")
