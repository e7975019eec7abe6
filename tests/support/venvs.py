"""Virtual environments for third-party Python clients whose pins would clash with the server's
own dependencies (aioxmpp 0.13 needs pyOpenSSL<24.3): built from PyPI on first use, cached
between runs, and run as subprocesses so nothing of theirs is imported by the test process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Sequence
from pathlib import Path

PIP_TIMEOUT = 300.0  # seconds; a first build downloads a few wheels, cryptography among them


class VenvBuildError(Exception):
    """The venv could not be built; the message carries pip's output."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vinesctl-tests"


def venv_key(requirements: Sequence[str]) -> str:
    """Changes with the requirement list, and with the interpreter a venv is tied to."""
    identity = [list(requirements), sys.version, os.path.realpath(sys._base_executable)]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def cached_venv(name: str, requirements: Sequence[str], root: Path | None = None) -> Path:
    """The python of a venv holding `requirements`, under `root` (default `cache_root()`) as
    `NAME-KEY`. Built in a temporary directory renamed into place once complete, so a directory
    under the final name is always whole, and two runs building at once both end up using
    whichever finished first."""
    root = root or cache_root()
    final = root / f"{name}-{venv_key(requirements)}"
    python = final / "bin" / "python"
    if python.exists():
        return python
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        # no pip inside: the test environment's own pip installs into it (`--python`), so
        # ensurepip (a separate python3-venv package on Debian) is not needed
        venv.create(building, symlinks=True)
        pip = [sys.executable, "-m", "pip", "--python", str(building / "bin" / "python")]
        try:
            proc = subprocess.run(
                [*pip, "install", "--no-input", "--disable-pip-version-check", *requirements],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PIP_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise VenvBuildError(f"pip install took over {PIP_TIMEOUT:.0f} s") from None
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise VenvBuildError(f"pip install {' '.join(requirements)} failed:\n{output}")
        try:
            building.rename(final)
        except OSError:
            if not python.exists():  # not a lost race: something else is in the way
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return python
