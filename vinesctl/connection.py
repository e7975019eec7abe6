"""How a command that connects finds its server and credentials.

Usage in a command module:

    from vinesctl.connection import connect_options, settings_from

    @click.command()
    @connect_options
    @click.pass_context
    def disco(ctx, server, ca, insecure):
        settings = settings_from(ctx, server, ca, insecure)

Resolution: the selected profile (`--profile` / VINESCTL_PROFILE / the default), then the
`--server`/`--ca`/`--insecure` overrides. The JID may also come from VINESCTL_JID. The console's
password: VINESCTL_PASSWORD, then the profile's password or password command, then a hidden
prompt; never argv. Without a terminal and without a source: UsageError (exit 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from vinesctl.errors import UsageError, VinesctlError
from vinesctl.profiles import Profile, check_jid, current, domain_of, parse_server

F = TypeVar("F", bound=Callable[..., Any])

INSECURE_WARNING = (
    "WARNING: --insecure: the server's certificate is NOT verified; anyone on the path can read "
    "and change this session, including the password. Use --ca FILE instead."
)


def connect_options(f: F) -> F:
    """Adds `--server HOST:PORT`, `--ca FILE` and `--insecure` (parameters server, ca, insecure)."""
    f = click.option(
        "--insecure",
        is_flag=True,
        help="Do not verify the server's certificate (dangerous; prefer --ca).",
    )(f)
    f = click.option(
        "--ca",
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help="CA certificate file to trust (default: the profile's).",
    )(f)
    f = click.option(
        "--server",
        metavar="HOST:PORT",
        help="Connect to this address instead of the profile's or the domain's SRV records.",
    )(f)
    return f


@dataclass
class ConnectionSettings:
    jid: str  # bare JID to log in with
    password: str = field(repr=False)
    host: str | None  # None: resolve the JID's domain (DNS SRV, then the domain itself)
    # (a profile of a bundled server without a fixed port: the running server's state file)
    port: int | None
    ca: str | None  # absolute path of a CA file, None: the system trust store
    insecure: bool = False
    profile: str | None = None  # the profile's name, when one was used

    @property
    def domain(self) -> str:
        return domain_of(self.jid)

    @property
    def address(self) -> str:
        """What to name in messages: `host:port` or the domain."""
        if self.host is None:
            return self.domain
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def settings_from(
    ctx: click.Context | None,
    server: str | None = None,
    ca: str | None = None,
    insecure: bool = False,
    *,
    need_password: bool = True,
) -> ConnectionSettings:
    """Profile, then overrides, then the password (see the module doc). With
    need_password=False the password is '' and nobody is asked."""
    env_jid = os.environ.get("VINESCTL_JID")
    profile: Profile | None = current(ctx, required=env_jid is None)
    jid = check_jid(env_jid if env_jid else profile.jid)  # type: ignore[union-attr]

    host: str | None = None
    port: int | None = None
    address = server or (profile.server if profile else None)
    if address:
        host, port = parse_server(address)
    elif profile is not None and profile.config:
        host, port = bundled_listener(profile.config) or (None, None)

    ca_file = ca or (profile.ca if profile else None)
    if ca_file:
        path = Path(ca_file).expanduser()
        if not path.is_file():
            raise UsageError(
                f"CA file {path} does not exist", "pass --ca with the server's CA certificate"
            )
        ca_file = str(path.resolve())
    if insecure:
        click.secho(INSECURE_WARNING, err=True, fg="red", bold=True)

    password = login_password(profile, jid) if need_password else ""
    return ConnectionSettings(
        jid=jid,
        password=password,
        host=host,
        port=port,
        ca=ca_file,
        insecure=insecure,
        profile=profile.name if profile else None,
    )


def bundled_listener(config: str) -> tuple[str, int] | None:
    """The STARTTLS listener of a running bundled server, from the state file it writes next to
    its vines.toml (used when a profile names no server, e.g. after `server init --port 0`)."""
    for kind, host, port in bundled_listeners(config):
        if kind == "c2s-starttls":
            return host, port
    return None


def bundled_listeners(config: str) -> list[tuple[str, str, int]]:
    """(kind, host to connect to, port) of each listener of the running bundled server of
    `config` ("c2s-starttls", "c2s-direct-tls"); [] when it does not run."""
    try:
        state = json.loads(state_file(config).read_text())
        listeners = list(state["listeners"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    found = []
    for listener in listeners:
        if not isinstance(listener, dict):
            continue
        kind, host, port = listener.get("kind"), listener.get("host"), listener.get("port")
        if isinstance(kind, str) and isinstance(host, str) and isinstance(port, int) and port > 0:
            connect = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
            found.append((kind, connect, port))
    return found


def state_file(config: str) -> Path:
    """vines.toml -> vines.state.json, by the naming rule of `vines_server.config.sibling_file`,
    repeated here because importing that module (dataclasses, PRECIS) costs every remote command
    about 10 ms; tests/test_import_hygiene.py checks that the two agree."""
    path = Path(config).expanduser()
    return path.with_name(path.stem + ".state.json")


def login_password(profile: Profile | None, jid: str) -> str:
    """VINESCTL_PASSWORD, the profile's password, its password command, a hidden prompt."""
    env = os.environ.get("VINESCTL_PASSWORD")
    if env:
        return env
    if profile and profile.password:
        return profile.password
    if profile and profile.password_command:
        return _run_password_command(profile)
    if not _interactive():
        raise UsageError(
            f"no password for {jid} and no terminal to ask",
            "set VINESCTL_PASSWORD or store one with 'vinesctl profile add ... --password-file'",
        )
    password = click.prompt(f"Password for {jid}", hide_input=True, err=True)
    if not password:
        raise UsageError("empty password", "type the account's password")
    return password


def _run_password_command(profile: Profile) -> str:
    command = profile.password_command or ""
    fix = f"check the password_command of profile {profile.name!r}"
    try:
        done = subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VinesctlError(f"password command failed ({exc.__class__.__name__})", fix) from None
    if done.returncode != 0:
        raise VinesctlError(f"password command exited with status {done.returncode}", fix)
    lines = done.stdout.splitlines()
    if not lines or not lines[0]:
        raise VinesctlError("password command printed no password", fix)
    return lines[0]


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
