"""The `server/` -> `vines_server` mapping: a regular wheel silently drops subpackages that
pyproject's `packages` does not list, so every package folder must be listed, and a built wheel
must contain every module and data file."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIR = SETUPTOOLS["package-dir"]  # import name -> folder
DATA_SUFFIXES = (".tcss",)


def package_folders() -> dict[str, Path]:
    """Import name -> folder for every folder with an __init__.py under the mapped roots."""
    found = {}
    for top, folder in PACKAGE_DIR.items():
        root = ROOT / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root)
            if "__pycache__" in rel.parts:
                continue
            found[".".join((top, *rel.parts))] = init.parent
    return found


def expected_files() -> set[str]:
    """Paths inside the wheel of every module and data file of every package."""
    files = set()
    for name, folder in package_folders().items():
        prefix = name.replace(".", "/")
        for path in folder.iterdir():
            if path.is_file() and (path.suffix == ".py" or path.suffix in DATA_SUFFIXES):
                files.add(f"{prefix}/{path.name}")
    return files


def test_mapping_is_the_documented_one():
    assert PACKAGE_DIR == {"vinesctl": "vinesctl", "vines_server": "server"}


def test_every_package_folder_is_listed():
    listed = set(SETUPTOOLS["packages"])
    missing = sorted(set(package_folders()) - listed)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    stale = sorted(listed - set(package_folders()))
    assert not stale, f"listed in pyproject.toml but not a package folder: {stale}"


def test_data_files_are_declared():
    """Every .tcss (and other data) file belongs to a package whose package-data covers it."""
    data = SETUPTOOLS.get("package-data", {})
    for name, folder in package_folders().items():
        for path in folder.iterdir():
            if path.suffix in DATA_SUFFIXES:
                patterns = data.get(name, []) + data.get("*", [])
                assert any(path.match(p) for p in patterns), (
                    f"{path.relative_to(ROOT)} is not in [tool.setuptools.package-data] {name}"
                )


def test_console_scripts():
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts == {"vinesctl": "vinesctl.cli:main", "vines-server": "vines_server.main:main"}


@pytest.mark.timeout(600)
def test_built_wheel_contains_every_module(tmp_path):
    if importlib.util.find_spec("build") is None:
        pytest.skip("the 'build' package is missing: pip install -e '.[test]'")
    # build from a copy: setuptools writes build/ and *.egg-info next to pyproject.toml
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in PACKAGE_DIR.values():
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    out = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = out.glob("vinesctl-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = sorted(expected_files() - names)
    assert not missing, f"the wheel lacks {missing}"
    assert not any(n.startswith("server/") for n in names), "server/ must ship as vines_server/"
    check_imports_from(wheel, tmp_path / "unpacked")


def check_imports_from(wheel: Path, target: Path) -> None:
    """Every module imports from the unpacked wheel alone (not from the work tree)."""
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    modules = sorted(
        name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        for name in expected_files()
        if name.endswith(".py") and not name.endswith("__main__.py")
    )
    probe = (
        "import importlib, sys\n"
        f"target = {str(target)!r}\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(name)\n"
        "    if not module.__file__.startswith(target):\n"
        "        bad.append(f'{name} from {module.__file__}')\n"
        "print('\\n'.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *modules],
        cwd=target,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"not imported from the wheel: {done.stdout}"
