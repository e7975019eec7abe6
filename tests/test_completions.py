"""Shell completion: the scripts in completions/ are Click's current output, and the completion
protocol the shells call back into gives the right answers (so a broken completion fails here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = {"bash": "vinesctl.bash", "zsh": "_vinesctl", "fish": "vinesctl.fish"}
RUN_VINESCTL = "from vinesctl.cli import main; main()"


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VINESCTL_", "_VINESCTL"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


def complete(tmp_path: Path, line: str, extra_env: dict | None = None) -> list[str]:
    """What `vinesctl` answers bash for the command line `line` (TAB at its end)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = base_env(tmp_path) | {
        "_VINESCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(cword),
    }
    env |= extra_env or {}
    done = subprocess.run(
        [sys.executable, "-c", RUN_VINESCTL],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values = []
    for row in filter(None, done.stdout.splitlines()):
        kind, _, value = row.partition(",")
        assert kind in ("plain", "file", "dir"), row
        values.append(value)
    return values


@pytest.mark.parametrize("shell", sorted(FILES))
def test_command_serves_clicks_own_script(tmp_path, shell):
    """`vinesctl completion SHELL` is the script the installed vinesctl serves the shell."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_VINESCTL, "completion", shell],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    env = base_env(tmp_path) | {"_VINESCTL_COMPLETE": f"{shell}_source"}
    source = subprocess.run(
        [sys.executable, "-c", RUN_VINESCTL], env=env, capture_output=True, text=True, timeout=60
    )
    assert source.stdout.strip() and source.stdout.rstrip("\n") == done.stdout.rstrip("\n")


@pytest.mark.parametrize("shell", sorted(FILES))
def test_committed_scripts_load_the_installed_one(shell):
    """The committed files are thin loaders: they ask the installed vinesctl for its script at load
    time, so a new Click release cannot make them stale."""
    stored = (ROOT / "completions" / FILES[shell]).read_text()
    assert f"vinesctl completion {shell}" in stored
    assert "_VINESCTL_COMPLETE" not in stored  # nothing of Click's generated script is copied


def wrapper_path(tmp_path: Path) -> Path:
    """A `vinesctl` executable for the shells: this interpreter running the CLI."""
    wrapper = tmp_path / "bin" / "vinesctl"
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "{RUN_VINESCTL}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper.parent


def shell_env(tmp_path: Path) -> dict[str, str]:
    env = base_env(tmp_path)
    env["PATH"] = f"{wrapper_path(tmp_path)}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp_path)
    return env


USER_SUBCOMMANDS = [
    "add", "delete", "disable", "enable", "jid-changes", "kick", "list", "passwd", "show",
]  # fmt: skip


def test_command_name(tmp_path):
    assert complete(tmp_path, "vinesctl us") == ["user"]
    assert complete(tmp_path, "vinesctl pro") == ["profile"]
    assert complete(tmp_path, "vinesctl comp") == ["completion", "components"]
    assert complete(tmp_path, "vinesctl clu") == ["cluster"]


def test_subcommands(tmp_path):
    assert complete(tmp_path, "vinesctl user ") == [
        "add",
        "delete",
        "disable",
        "enable",
        "jid-changes",
        "kick",
        "list",
        "passwd",
        "show",
    ]
    assert complete(tmp_path, "vinesctl server ") == [
        "add-domain",
        "backup",
        "check-config",
        "export",
        "import",
        "init",
        "install-service",
        "logs",
        "purge-offline",
        "reload",
        "remove-domain",
        "restart",
        "start",
        "status",
        "stop",
    ]
    assert complete(tmp_path, "vinesctl adhoc ") == ["list", "run"]
    assert complete(tmp_path, "vinesctl motd ") == ["delete", "set", "show"]
    assert complete(tmp_path, "vinesctl allowlist ") == ["add", "remove"]
    assert "--details" in complete(tmp_path, "vinesctl online --")
    assert set(complete(tmp_path, "vinesctl profile ")) == {"add", "list", "remove", "show", "use"}
    assert complete(tmp_path, "vinesctl completion ") == ["bash", "zsh", "fish"]


def test_options(tmp_path):
    assert "--json" in complete(tmp_path, "vinesctl user list --")
    assert "--config" in complete(tmp_path, "vinesctl server start --")


def test_profile_names_from_the_config(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("work", "home", "lab"):
        assert run_cli("profile", "add", name, "--jid", f"me@{name}.example").exit_code == 0
    assert complete(tmp_path, "vinesctl --profile ") == ["home", "lab", "work"]
    assert complete(tmp_path, "vinesctl --profile w") == ["work"]
    assert complete(tmp_path, "vinesctl profile use h") == ["home"]
    assert complete(tmp_path, "vinesctl profile remove ") == ["home", "lab", "work"]


def test_profile_completion_survives_a_broken_file(tmp_path):
    path = tmp_path / "config" / "vinesctl" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[[[ broken")
    assert complete(tmp_path, "vinesctl --profile ") == []


def needs_shell(name: str):
    return pytest.mark.skipif(
        shutil.which(name) is None and os.environ.get("CI") != "true",
        reason=f"{name} is not installed",
    )


@needs_shell("bash")
def test_bash_script_in_bash(tmp_path):
    """The stored bash script, sourced in a real bash, fills COMPREPLY through vinesctl."""
    script = ROOT / "completions" / FILES["bash"]
    program = (
        f"source '{script}'\n"
        "COMP_WORDS=(vinesctl user ''); COMP_CWORD=2\n"
        "_vinesctl_completion vinesctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        env=shell_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == USER_SUBCOMMANDS, done.stderr


@needs_shell("fish")
def test_fish_script_in_fish(tmp_path):
    """The stored fish script, sourced in a real fish, completes through vinesctl."""
    script = ROOT / "completions" / FILES["fish"]
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"source '{script}'; complete -C 'vinesctl user '"],
        env=shell_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == USER_SUBCOMMANDS, (
        done.stderr
    )


@needs_shell("zsh")
def test_zsh_script_autoloads_in_zsh(tmp_path):
    """The stored zsh file, autoloaded from $fpath as zsh does, defines Click's completion
    function from the installed vinesctl."""
    program = (
        f"fpath=('{ROOT / 'completions'}' $fpath)\n"
        f"autoload -Uz compinit && compinit -u -d '{tmp_path / 'zcompdump'}'\n"
        "autoload -Uz _vinesctl\n"
        "_vinesctl 2>/dev/null\n"
        "whence -w _vinesctl_completion\n"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", program],
        env=shell_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "_vinesctl_completion: function" in done.stdout, done.stderr
