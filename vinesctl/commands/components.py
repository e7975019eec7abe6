"""`vinesctl components`: the server's external components (XEP-0114) through our own
`urn:vinesctl:admin#components` node: connected or not, address, since, stanzas in and out,
last presence and load."""

from __future__ import annotations

import click

from vinesctl.commands.remote import show_listing, timeout_option
from vinesctl.connection import connect_options
from vinesctl.output import json_option


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
    show_listing(ctx, server, ca, insecure, as_json, timeout, "components", "components_view")
