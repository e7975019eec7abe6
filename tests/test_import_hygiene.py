"""`vinesctl --help` stays fast: importing the CLI (and every command module) loads none of
slixmpp, textual, dnspython, rich or cryptography; those load inside the commands that use them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("slixmpp", "textual", "dns", "rich", "cryptography")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_import_cli_loads_nothing_heavy():
    assert heavy(loaded_after("import vinesctl.cli")) == []


def test_help_loads_nothing_heavy():
    code = (
        "import contextlib, io\n"
        "from vinesctl.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    assert heavy(loaded_after(code)) == []


def test_server_package_is_not_loaded_for_the_cli():
    """`vinesctl server ...` imports vines_server lazily too (its cryptography, sqlite3)."""
    modules = loaded_after("import vinesctl.cli")
    assert "vines_server.storage" not in modules
    assert "cryptography" not in {m.split(".")[0] for m in modules}


def test_finding_a_bundled_server_does_not_load_its_config_module():
    """Every remote command with a bundled server's profile reads the listener from the state
    file; the server's config module (dataclasses, PRECIS) stays unloaded."""
    code = (
        "from vinesctl.connection import bundled_listeners\n"
        "bundled_listeners('/nonexistent/vines.toml')\n"
    )
    assert "vines_server.config" not in loaded_after(code)


def test_state_file_follows_the_servers_naming_rule(tmp_path):
    from vines_server.config import sibling_file

    from vinesctl.connection import state_file

    for name in ("vines.toml", "other.toml", "a.b.toml", "noext"):
        config = tmp_path / "d" / name
        assert state_file(str(config)) == sibling_file(config, ".state.json")
