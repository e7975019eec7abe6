"""Fixtures shared by every test folder. Keep it small: folder-specific fixtures live in that
folder's conftest.py."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_CONFIG_HOME (profiles) and XDG_DATA_HOME (server init's default dir) under
    tmp_path, and no VINESCTL_* variables from the caller's environment. Returns the config home;
    the profiles file is `config_home / "vinesctl" / "config.toml"`."""
    config = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in list(os.environ):
        if name.startswith("VINESCTL_"):
            monkeypatch.delenv(name)
    return config


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(config_home: Path, cli_runner: CliRunner) -> Callable[..., CliResult]:
    """run_cli(*args, input=None, env=None) runs `vinesctl ARGS` in-process through the real
    error boundary (`vinesctl.cli.main`), with a private config home and no terminal on stdin.
    """
    from vinesctl.cli import main

    def run(*args: str, input: str | None = None, env: dict | None = None) -> CliResult:
        code = 0
        with cli_runner.isolation(input=input, env=env) as (out, err, _):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue(), err.getvalue()
        return CliResult(code, stdout.decode(), stderr.decode())

    return run
