"""`vinesctl sessions`: every client session of the server with its details (our own
`urn:vinesctl:admin#sessions` node: JID, address, TLS version and cipher, SASL mechanism, since,
stream state)."""

from __future__ import annotations

import click

from vinesctl.commands.remote import show_listing, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import json_option


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
    show_listing(ctx, server, ca, insecure, as_json, timeout, "sessions", "sessions_view")
