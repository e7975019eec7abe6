"""New passwords (`user add`, `user passwd`, `server init --admin`, `profile add`).

Sources in order: `--password-file PATH` (`-` reads stdin; the first line is the password), then
VINESCTL_NEW_PASSWORD, then a hidden prompt asked twice. Never argv, never printed, never logged.
Without a terminal and without a source: UsageError (exit 2).
"""

from __future__ import annotations

import os
import secrets as _random
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from vinesctl.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

ENV_NEW = "VINESCTL_NEW_PASSWORD"


def password_file_option(f: F) -> F:
    """`--password-file PATH|-` (parameter password_file)."""
    return click.option(
        "--password-file",
        metavar="PATH|-",
        help="Read the new password from the first line of this file ('-': stdin).",
    )(f)


def read_password_file(path: str) -> str:
    """The first line of PATH ('-': stdin), without its line ending; UsageError when empty."""
    try:
        if path == "-":
            line = sys.stdin.readline()
        else:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                line = f.readline()
    except OSError as exc:
        raise UsageError(
            f"cannot read password file {path} ({exc.strerror})", "check the path"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"password file {path} is not UTF-8 text", "save it as UTF-8") from None
    password = line.rstrip("\r\n")
    if not password:
        where = "standard input" if path == "-" else f"password file {path}"
        raise UsageError(f"{where} holds no password", "put the password on its first line")
    return password


def new_password(password_file: str | None, prompt: str = "New password") -> str:
    """A new password from --password-file, VINESCTL_NEW_PASSWORD or a prompt asked twice."""
    if password_file:
        return read_password_file(password_file)
    env = os.environ.get(ENV_NEW)
    if env:
        return env
    if not interactive():
        raise UsageError(
            "no new password given and no terminal to ask",
            f"use --password-file PATH (or - for stdin) or set {ENV_NEW}",
        )
    while True:
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True)
        if password:
            return password
        click.echo("The password may not be empty.", err=True)


def optional_new_password(password_file: str | None) -> str | None:
    """--password-file or VINESCTL_NEW_PASSWORD when given, else None (no prompt)."""
    if password_file:
        return read_password_file(password_file)
    return os.environ.get(ENV_NEW) or None


def random_password() -> str:
    """A random password (about 190 bits) for accounts whose password only a profile keeps."""
    return _random.token_urlsafe(24)


def interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
