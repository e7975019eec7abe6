"""`vinesctl motd show|set|delete`: the message of the day users get at login (XEP-0133
set-motd, edit-motd, delete-motd)."""

from __future__ import annotations

import click

from vinesctl.commands.remote import text_setting_commands


@click.group("motd")
def command() -> None:
    """The message of the day, sent to users when they log in."""


text_setting_commands(command, "motd", "message of the day")
