"""The rooms stay tidy (DESIGN.md): the sans-I/O core `vines_server.xmpp` imports nothing with
I/O (asyncio, ssl, socket) and nothing of the server around it (core, net, storage, modules);
`vines_server` never imports `vinesctl`. Read from every module's source with ast, so an import
inside a function or behind TYPE_CHECKING counts too."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import vines_server

ROOT = Path(vines_server.__file__).parent
IO = {"asyncio", "ssl", "socket", "selectors"}
AROUND = {f"vines_server.{p}" for p in ("core", "net", "storage", "modules", "server", "main")}


def imports(path: Path, package: str) -> set[str]:
    """Absolute names of what `path` imports (relative imports resolved against `package`)."""
    names = set()
    # a CPython 3.11 bug: a finalizer that raises during ast.parse (slixmpp's __del__ on a
    # closed loop, left by earlier CLI tests) fails the parse with "SystemError: AST
    # constructor recursion depth mismatch"; so no garbage collection while parsing
    gc.disable()
    try:
        tree = ast.parse(path.read_text(), str(path))
    finally:
        gc.enable()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            names.add(base)
    return names


def modules(under: Path) -> list[tuple[Path, str]]:
    out = []
    for path in sorted(under.rglob("*.py")):
        package = ".".join(("vines_server", *path.parent.relative_to(ROOT).parts))
        out.append((path, package.rstrip(".")))
    return out


def offending(name: str, banned: set[str]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in banned)


def test_the_xmpp_core_has_no_io_and_no_server_around_it():
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path, package in modules(ROOT / "xmpp")
        for name in imports(path, package)
        if offending(name, IO | AROUND)
    }
    assert found == set()


def test_the_server_never_imports_the_console():
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path, package in modules(ROOT)
        for name in imports(path, package)
        if offending(name, {"vinesctl"})
    }
    assert found == set()


def test_the_checks_see_a_banned_import(tmp_path: Path):
    """The walk finds imports anywhere in a file, relative ones included."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import asyncio\nfrom ..core import routing\n")
    found = imports(probe, "vines_server.xmpp")
    assert offending("asyncio", IO) and {"asyncio", "vines_server.core"} <= found
    assert any(offending(n, AROUND) for n in found)
