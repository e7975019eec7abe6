"""The cached venvs the interop tests build for clients with clashing pins (tests/support/venvs.py):
a complete venv is reused as is, a failed build leaves nothing behind and says what pip said."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.venvs import VenvBuildError, cache_root, cached_venv, venv_key

UNINSTALLABLE = "./no-such-project-dir"  # pip fails on it at once, with no network access


def test_a_cached_venv_is_reused_without_building(tmp_path: Path) -> None:
    python = tmp_path / f"client-{venv_key([UNINSTALLABLE])}" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    # building would fail on this requirement: getting the path back means nothing was built
    assert cached_venv("client", [UNINSTALLABLE], root=tmp_path) == python


def test_a_failed_build_reports_pip_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(VenvBuildError, match="no-such-project-dir") as excinfo:
        cached_venv("client", [UNINSTALLABLE], root=tmp_path)
    assert f"pip install {UNINSTALLABLE} failed" in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


def test_the_key_follows_the_requirements() -> None:
    assert venv_key(["a==1", "b"]) == venv_key(["a==1", "b"])
    assert venv_key(["a==1", "b"]) != venv_key(["a==2", "b"])


def test_the_cache_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "vinesctl-tests"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "vinesctl-tests"
