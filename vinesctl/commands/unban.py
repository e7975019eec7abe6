"""`vinesctl unban IP`: lift the ban a server puts on an address after repeated failed logins
(our server's `urn:vinesctl:admin#unban`; the console's own address is exempt by default,
`[limits] ban_exempt`)."""

from __future__ import annotations

import ipaddress
from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option, warn_notes
from vinesctl.connection import connect_options
from vinesctl.errors import UsageError


@click.command("unban")
@click.argument("ip")
@timeout_option
@connect_options
@click.pass_context
def command(
    ctx: click.Context,
    ip: str,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
) -> None:
    """Let IP log in again after the server banned it for failed logins (needs an operator:
    an admin listed in the server's vines.toml)."""
    try:
        address = str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        raise UsageError(
            f"{ip!r} is not an IP address", "give e.g. 192.0.2.7 or 2001:db8::7"
        ) from None

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import admin

        return await admin.unban(client, conn.domain, address)

    outcome = run_remote(ctx, server, ca, insecure, False, work, timeout)
    warn_notes(outcome)
    click.echo(outcome.text or f"{address} unbanned")
