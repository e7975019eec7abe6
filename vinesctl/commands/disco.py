"""`vinesctl disco JID`: service discovery (XEP-0030) through the profile's account."""

from __future__ import annotations

import click

from vinesctl.commands.remote import timeout_option
from vinesctl.connection import connect_options, settings_from
from vinesctl.errors import UsageError
from vinesctl.output import emit, json_option


@click.command("disco")
@click.argument("jid", required=False)
@click.option("--node", help="Query this node of the entity.")
@click.option("--items", is_flag=True, help="Also list the entity's items.")
@click.option("--tree", is_flag=True, help="Walk the items recursively and show a tree.")
@click.option(
    "--depth",
    type=click.IntRange(1, 10),
    help="Levels to walk with --tree (default 2).",
)
@timeout_option
@connect_options
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    jid: str | None,
    node: str | None,
    items: bool,
    tree: bool,
    depth: int | None,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Show the identities, features, extended info and items of JID (default: your domain).

    Queries go through the profile's account, so a remote domain is reached by your server.
    Features are labelled with their XEP where the namespace is known; extended info forms
    (XEP-0128) such as contact addresses (XEP-0157) are shown as tables.
    """
    import asyncio

    from vinesctl.render.disco import render_disco
    from vinesctl.xmpp import disco

    if depth is not None and not tree:
        raise UsageError("--depth only applies to --tree", "add --tree or drop --depth")
    if jid is not None and (not jid.strip() or " " in jid.strip()):
        raise UsageError(f"{jid!r} is not a JID", "give a JID such as example.org")
    settings = settings_from(ctx, server, ca, insecure)
    target = jid.strip() if jid else settings.domain
    from vinesctl.xmpp.session import open_session

    async def run() -> disco.DiscoResult:
        async with open_session(settings, ("xep_0030",), timeout) as client:
            result = disco.DiscoResult(target, node or "")
            try:
                result.info = await disco.get_info(client, target, node or "", timeout)
                if items:
                    result.items = await disco.get_items(client, target, node or "", timeout)
                if tree:
                    result.tree = await disco.walk(client, target, node or "", depth or 2, timeout)
            except disco.DiscoError as exc:
                raise disco.unreachable(exc, settings.domain) or exc from None
            return result

    emit(asyncio.run(run()), as_json, render_disco)
