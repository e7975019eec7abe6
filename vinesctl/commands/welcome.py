"""`vinesctl welcome show|set|delete`: the message new accounts receive (XEP-0133 set-welcome,
delete-welcome; show reads the form of set-welcome, which holds the current text)."""

from __future__ import annotations

import click

from vinesctl.commands.remote import text_setting_commands


@click.group("welcome")
def command() -> None:
    """The welcome message, sent to each new account."""


text_setting_commands(command, "welcome", "welcome message")
