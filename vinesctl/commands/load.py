"""`vinesctl load`: the server's current load, once (the `<load/>` it publishes as presence)."""

from __future__ import annotations

import click

from vinesctl.commands.remote import timeout_option
from vinesctl.connection import connect_options, settings_from
from vinesctl.output import emit, json_option


@click.command("load")
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
    """Print the server's current load: users online, stanza rates, CPU, memory, uptime,
    capacity and connections per listener (needs an administrator's account).

    The bundled server answers this (urn:vinesctl:load:0); `vinesctl dashboard` shows the same
    figures live, as the server pushes them.
    """
    import asyncio

    from vinesctl.errors import VinesctlError
    from vinesctl.render.load import render_load
    from vinesctl.xmpp import presence as wire
    from vinesctl.xmpp.session import open_session

    settings = settings_from(ctx, server, ca, insecure)

    async def run():
        async with open_session(settings, ("xep_0030",), timeout) as client:
            try:
                return await wire.current_load(client, settings.domain, timeout)
            except wire.LoadError as exc:
                if exc.condition in ("service-unavailable", "feature-not-implemented"):
                    raise VinesctlError(
                        f"{settings.domain} does not publish its load",
                        "only the bundled vinesctl server has urn:vinesctl:load:0",
                    ) from None
                if exc.condition == "forbidden":
                    raise VinesctlError(
                        f"{settings.domain} shows its load to administrators only",
                        "use a profile whose account is an admin of the server",
                    ) from None
                raise

    emit(asyncio.run(run()), as_json, render_load)
