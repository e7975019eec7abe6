"""`vinesctl profile add|list|show|use|remove`: connection profiles (mode 0600)."""

from __future__ import annotations

from pathlib import Path

import click

from vinesctl.errors import UsageError
from vinesctl.output import emit, json_option
from vinesctl.profiles import Profile, ProfileStore, check_jid, parse_server, selected_name
from vinesctl.secrets import password_file_option, read_password_file


def _complete_profile(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    from vinesctl.commands.completion import profile_names

    return profile_names(ctx, param, incomplete)


@click.group("profile")
def command() -> None:
    """Manage connection profiles."""


@command.command("add")
@click.argument("name")
@click.option("--jid", required=True, help="Bare JID to log in with, e.g. admin@example.com.")
@click.option("--server", metavar="HOST:PORT", help="Address to connect to (default: DNS SRV).")
@click.option("--ca", metavar="FILE", type=click.Path(dir_okay=False), help="CA file to trust.")
@click.option(
    "--config",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="vines.toml of a bundled server (for 'vinesctl server ...').",
)
@click.option("--password-command", metavar="CMD", help="Shell command that prints the password.")
@password_file_option
@click.option("--default", "make_default", is_flag=True, help="Make it the default profile.")
@click.option("--force", is_flag=True, help="Replace an existing profile of that name.")
def add(
    name: str,
    jid: str,
    server: str | None,
    ca: str | None,
    config: str | None,
    password_command: str | None,
    password_file: str | None,
    make_default: bool,
    force: bool,
) -> None:
    """Add a profile NAME. The password is stored only with --password-file (or use
    --password-command; otherwise VINESCTL_PASSWORD or a prompt supplies it when connecting)."""
    if not name or any(c in name for c in " \t/\\\"'"):
        raise UsageError(f"profile name {name!r} is not valid", "use letters, digits, . - _")
    store = ProfileStore.load()
    if name in store.profiles and not force:
        raise UsageError(
            f"profile {name!r} exists", "pass --force to replace it, or choose another name"
        )
    if password_file and password_command:
        raise UsageError(
            "--password-file and --password-command exclude each other", "give only one"
        )
    if server:
        parse_server(server)
    if ca:
        path = Path(ca).expanduser()
        if not path.is_file():
            raise UsageError(f"CA file {path} does not exist", "check the path given to --ca")
        ca = str(path.resolve())
    if config:
        config = str(Path(config).expanduser().resolve())
    password = read_password_file(password_file) if password_file else None
    profile = Profile(name, check_jid(jid), server, ca, password, password_command, config)
    store.add(profile, make_default=make_default)
    store.save()
    default = " (default)" if store.default == name else ""
    click.echo(f"profile {name}{default} saved in {store.path}")


@command.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List profiles (passwords are never shown)."""
    store = ProfileStore.load()
    rows = [dict(p.public(), default=p.name == store.default) for p in store.profiles.values()]
    if as_json:
        emit({"profiles": rows}, True)
        return
    if not rows:
        click.echo("no profiles: run 'vinesctl server init' or 'vinesctl profile add'")
        return
    from vinesctl.render.profiles import profile_table

    emit(rows, False, profile_table)


@command.command("show")
@click.argument("name", required=False, shell_complete=_complete_profile)
@json_option
@click.pass_context
def show(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Show a profile (default: the selected one); the password only as set/not set."""
    store = ProfileStore.load()
    profile = store.get(name or selected_name(ctx))
    data = dict(profile.public(), default=profile.name == store.default, file=str(store.path))
    if as_json:
        emit(data, True)
        return
    from vinesctl.render.profiles import profile_details

    emit(data, False, profile_details)


@command.command("use")
@click.argument("name", shell_complete=_complete_profile)
def use(name: str) -> None:
    """Make NAME the default profile."""
    store = ProfileStore.load()
    store.set_default(name)
    store.save()
    click.echo(f"default profile: {name}")


@command.command("remove")
@click.argument("name", shell_complete=_complete_profile)
def remove(name: str) -> None:
    """Remove the profile NAME (the server and its data are untouched)."""
    store = ProfileStore.load()
    store.remove(name)
    store.save()
    click.echo(f"profile {name} removed")
