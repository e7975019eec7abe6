"""A Click group that imports a command's module only when that command is used.

Building every command means importing every command module and running its Click decorators:
about as long as importing Click itself. `vinesctl --help` needs only each command's name and
summary, and `vinesctl user add` only `vinesctl.commands.user`, so the group keeps a table of
names and summaries and imports `<package>.<name>` (which exposes `command`) on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click


class LazyGroup(click.Group):
    """`lazy_commands` maps a command name to its summary (the first sentence of its help): the
    listing in `--help` is drawn from it; anything else loads the real command."""

    def __init__(
        self, *args: object, package: str, lazy_commands: Mapping[str, str], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.package = package
        self.lazy_commands = dict(lazy_commands)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            if self._listing:  # a stand-in is enough to print a summary
                return click.Command(cmd_name, help=self.lazy_commands[cmd_name])
            module = importlib.import_module(f"{self.package}.{cmd_name}")
            self.add_command(module.command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Click's own layout and shortening, fed with stand-ins for the commands not yet loaded
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False
