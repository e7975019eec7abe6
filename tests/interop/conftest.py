"""Fixtures for interop tests against third-party software. A missing tool skips the test with a
reason locally and fails it under CI=true (`.ci/run` installs every tool)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.prosody import ProsodyInstance, prosody_available
from tests.support.venvs import VenvBuildError, cached_venv

# aioxmpp 0.13.3 needs pytz and pyOpenSSL<24.3 (and so an old cryptography): its own venv
AIOXMPP_REQUIREMENTS = ("aioxmpp==0.13.3", "pytz", "pyOpenSSL<24.3")


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI must install it (.ci/run)")
    pytest.skip(reason)


@pytest.fixture
def prosody(tmp_path: Path) -> Iterator[ProsodyInstance]:
    """A running Prosody (domain prosody.test) on 127.0.0.1 and an ephemeral c2s port, with its
    own config, data, pid and log under tmp_path; `ca_file` trusts its certificate."""
    reason = prosody_available()
    if reason:
        _missing(reason)
    instance = ProsodyInstance(tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def aioxmpp_python() -> Path:
    """The python of a venv with aioxmpp, built from PyPI on first use and cached between runs
    (tests/support/venvs.py); tests/interop/aioxmpp_driver.py runs in it as a subprocess."""
    try:
        return cached_venv("aioxmpp", AIOXMPP_REQUIREMENTS)
    except VenvBuildError as exc:
        _missing(f"cannot build the aioxmpp venv from PyPI: {exc}")
