"""`vinesctl user add|passwd|delete|list`.

Local mode (`--config PATH`): works directly on the store of a bundled server, for bootstrap and
recovery (like `prosodyctl adduser`); the server may be running (SQLite serializes writers).
Remote mode over XMPP (XEP-0133) arrives with the admin commands; until then --config is required.
"""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.server import load_config
from vinesctl.errors import UsageError, VinesctlError
from vinesctl.output import emit, json_option
from vinesctl.secrets import new_password, password_file_option


def local_config_option(f: Any) -> Any:
    return click.option(
        "--config",
        metavar="PATH",
        type=click.Path(dir_okay=False),
        help="Work on the store of the bundled server with this vines.toml (local mode).",
    )(f)


def _local_config(config: str | None) -> Any:
    if not config:
        raise UsageError(
            "remote user administration over XMPP arrives with the admin commands",
            "pass --config PATH/vines.toml to work on a bundled server's store",
        )
    cfg = load_config(config)
    if cfg.storage.backend == "memory":
        raise UsageError(
            f"{cfg.path} uses storage.backend = 'memory', which lives only inside the server",
            "use the sqlite backend to manage users locally",
        )
    return cfg


def resolve_user(ctx: click.Context, user: str, cfg: Any) -> str:
    """A bare JID, or a localpart completed with the profile's domain (when the config hosts it)
    or else the config's first domain; the domain must be hosted by the config."""
    from vinesctl.profiles import check_jid, current

    if "@" in user:
        jid = check_jid(user)
    else:
        if not user or "/" in user or " " in user:
            raise UsageError(f"{user!r} is not a user name", "give user@domain or a localpart")
        profile = current(ctx, required=False)
        domain = profile.domain if profile and profile.domain in cfg.domains else None
        jid = check_jid(f"{user}@{domain or next(iter(cfg.domains))}")
    domain = jid.rpartition("@")[2]
    if domain not in cfg.domains:
        hosted = ", ".join(sorted(cfg.domains))
        raise UsageError(
            f"{domain} is not hosted by {cfg.path} (hosted: {hosted})",
            "give a JID on a hosted domain",
        )
    return jid


def _run(cfg: Any, action: Any) -> Any:
    """Opens the configured store, awaits action(storage), closes it; StorageError -> one line."""
    import asyncio

    from vines_server.storage import AccountExists, NoSuchAccount, StorageError, open_storage

    async def go() -> Any:
        storage = open_storage(cfg.storage)
        await storage.open()
        try:
            return await action(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(go())
    except (AccountExists, NoSuchAccount):
        raise
    except StorageError as exc:
        raise VinesctlError(
            f"store {cfg.storage.path}: {exc}", "check the file and its permissions"
        ) from None


def _credentials(cfg: Any, password: str) -> Any:
    from vines_server.xmpp.sasl.credentials import derive_all

    return derive_all(password, cfg.limits.pbkdf2_iterations)


@click.group("user")
def command() -> None:
    """Manage accounts (local mode: --config PATH of a bundled server)."""


@command.command("add")
@click.argument("user")
@local_config_option
@password_file_option
@click.pass_context
def add(ctx: click.Context, user: str, config: str | None, password_file: str | None) -> None:
    """Create the account USER (user@domain or a localpart)."""
    cfg = _local_config(config)
    jid = resolve_user(ctx, user, cfg)
    password = new_password(password_file, prompt=f"Password for {jid}")
    credentials = _credentials(cfg, password)

    from vines_server.storage import AccountExists

    try:
        _run(cfg, lambda s: s.create_account(jid, credentials))
    except AccountExists:
        raise VinesctlError(
            f"{jid} already exists", f"change its password with 'vinesctl user passwd {jid}'"
        ) from None
    click.echo(f"created {jid}")


@command.command("passwd")
@click.argument("user")
@local_config_option
@password_file_option
@click.pass_context
def passwd(ctx: click.Context, user: str, config: str | None, password_file: str | None) -> None:
    """Set a new password for USER."""
    cfg = _local_config(config)
    jid = resolve_user(ctx, user, cfg)

    async def exists(storage: Any) -> bool:
        return await storage.get_account(jid) is not None

    if not _run(cfg, exists):
        raise _no_such(jid)
    password = new_password(password_file, prompt=f"New password for {jid}")
    credentials = _credentials(cfg, password)

    from vines_server.storage import NoSuchAccount

    try:
        _run(cfg, lambda s: s.set_credentials(jid, credentials))
    except NoSuchAccount:
        raise _no_such(jid) from None
    click.echo(f"password of {jid} changed")


@command.command("delete")
@click.argument("user")
@local_config_option
@click.pass_context
def delete(ctx: click.Context, user: str, config: str | None) -> None:
    """Delete USER with all its data (roster, offline messages, vCard, private storage)."""
    cfg = _local_config(config)
    jid = resolve_user(ctx, user, cfg)
    if not _run(cfg, lambda s: s.delete_account(jid)):
        raise _no_such(jid)
    click.echo(f"deleted {jid}")


@command.command("list")
@local_config_option
@click.option("--domain", help="Only this domain's accounts.")
@json_option
def list_(config: str | None, domain: str | None, as_json: bool) -> None:
    """List accounts with creation time, last login and whether they are disabled."""
    cfg = _local_config(config)
    if domain is not None:
        domain = domain.lower()
        if domain not in cfg.domains:
            raise UsageError(
                f"{domain} is not hosted by {cfg.path}",
                f"hosted: {', '.join(sorted(cfg.domains))}",
            )

    async def collect(storage: Any) -> list[dict[str, Any]]:
        rows = []
        for jid in await storage.list_accounts(domain):
            account = await storage.get_account(jid)
            if account is None:  # deleted meanwhile
                continue
            rows.append(
                {
                    "jid": jid,
                    "disabled": account.disabled,
                    "created": account.created,
                    "last_login": account.last_login,
                    "last_logout": account.last_logout,
                }
            )
        return rows

    rows = _run(cfg, collect)
    if as_json:
        emit(rows, True)
        return
    if not rows:
        click.echo("no accounts")
        return
    from vinesctl.output import to_jsonable
    from vinesctl.render.servers import users_table

    emit(to_jsonable(rows), False, users_table)


def _no_such(jid: str) -> VinesctlError:
    return VinesctlError(f"no account {jid}", "see 'vinesctl user list'")
