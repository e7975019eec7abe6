"""The root group loads a command's module only when the command is used: `vinesctl --help` lists
every command from the table in `vinesctl.cli`, exactly as the loaded commands would list
themselves, and the table names every command module."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import click
import pytest

import vinesctl.commands
from vinesctl.cli import COMMANDS, cli
from vinesctl.lazy_group import LazyGroup


def fresh_root() -> LazyGroup:
    """A root group like `cli` with nothing loaded yet (the module-level one keeps what earlier
    tests loaded)."""
    return LazyGroup(
        "vinesctl",
        params=cli.params,
        callback=cli.callback,
        package="vinesctl.commands",
        lazy_commands=COMMANDS,
        context_settings=cli.context_settings,
    )


def root_help(group: click.Group, width: int) -> str:
    with click.Context(group, info_name="vinesctl", terminal_width=width) as ctx:
        return group.get_help(ctx)


@pytest.mark.parametrize("width", [50, 80, 200])
def test_help_lists_the_commands_as_they_list_themselves(width):
    group = fresh_root()
    from_table = root_help(group, width)
    assert group.commands == {}, "listing the commands loaded one"
    for name in group.list_commands(click.Context(group)):
        group.get_command(click.Context(group), name)
    assert set(group.commands) == set(COMMANDS)
    assert root_help(group, width) == from_table


def test_every_command_module_is_in_the_table():
    """A module of vinesctl/commands/ with a `command` must be listed, under that command's name."""
    found = {}
    for info in pkgutil.iter_modules(vinesctl.commands.__path__):
        module = importlib.import_module(f"vinesctl.commands.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            found[info.name] = command.name
    assert sorted(found) == sorted(COMMANDS)
    assert all(module == name for module, name in found.items())


def modules_after(argv: list[str]) -> list[str]:
    """The modules loaded by `vinesctl ARGV` run in a fresh interpreter."""
    code = (
        "import contextlib, io, json, sys\n"
        "from vinesctl.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def command_modules(modules: list[str]) -> set[str]:
    return {m for m in modules if m.startswith("vinesctl.commands.")}


def test_root_help_imports_no_command_module():
    assert command_modules(modules_after(["--help"])) == set()


def test_a_command_imports_only_its_own_module():
    """`vinesctl user --help` loads the user commands (and what they share), not the others."""
    loaded = command_modules(modules_after(["user", "--help"]))
    assert "vinesctl.commands.user" in loaded
    assert "vinesctl.commands.server" not in loaded
    assert "vinesctl.commands.dashboard" not in loaded


def test_unknown_command_is_still_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "from vinesctl.cli import main; main()", "nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "No such command 'nosuch'" in done.stderr
