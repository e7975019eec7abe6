"""Fixtures for interop tests against third-party software. A missing tool skips the test with a
reason locally and fails it under CI=true (`.ci/run` installs every tool)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.prosody import ProsodyInstance, prosody_available


def _missing(reason: str) -> None:
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
