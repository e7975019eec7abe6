"""`vinesctl s2s [--json]` lists the server-to-server streams (our server's
`urn:vinesctl:admin#s2s`: direction, peer domain, address, TLS version and cipher,
authentication EXTERNAL or dialback, certificate verified or why not, since, queued stanzas);
`vinesctl s2s close DOMAIN` closes every stream with one peer (`#s2s-close`)."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.remote import run_remote, show_listing, timeout_option, warn_notes
from vinesctl.connection import connect_options
from vinesctl.output import json_option


@click.group("s2s", invoke_without_command=True)
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
    """List the server's server-to-server streams with their TLS, authentication and
    certificate verdict (needs an operator: an admin listed in the server's vines.toml)."""
    if ctx.invoked_subcommand is not None:
        return

    show_listing(ctx, server, ca, insecure, as_json, timeout, "s2s_streams", "s2s_view")


@command.command("close")
@click.argument("domain")
@timeout_option
@connect_options
@click.pass_context
def close(
    ctx: click.Context,
    domain: str,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
) -> None:
    """Close every s2s stream with DOMAIN (the peer may connect again while it is allowed)."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.s2s_close(client, conn.domain, domain.strip())

    outcome = run_remote(ctx, server, ca, insecure, False, work, timeout)
    warn_notes(outcome)
    click.echo(outcome.text or f"streams with {domain} closed")
