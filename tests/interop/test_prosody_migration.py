"""Moving accounts from a real Prosody: its own `prosody-migrator` writes XEP-0227 (one file per
account, run twice so every file repeats its <scram-credentials>), `vinesctl server import`
reads the directory into a fresh bundled server, and slixmpp (which prefers SCRAM-SHA-256) logs
in with the old passwords and finds its roster as it was on Prosody."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.cli.test_server_cli import vinesctl
from tests.interop.conftest import _missing
from tests.support.logins import login
from tests.support.prosody import ProsodyInstance, prosody_available

pytestmark = pytest.mark.interop

USERS = {"alice": "alice old pass", "bob": "bob old pass", "carol": "carol old pass"}
MIGRATOR = shutil.which("prosody-migrator")
# the migrator writes into Prosody's own data directory (Debian's), whatever the config says
SYSTEM_DATA = Path("/var/lib/prosody")


def migrate(prosody: ProsodyInstance, out: Path) -> None:
    """prosody-migrator, as root switching to the prosody user: the data must be readable by it,
    so a copy goes to a directory of its own; its files are moved out of the system directory."""
    work = Path(tempfile.mkdtemp(prefix="vines-migrate-"))
    try:
        os.chmod(work, 0o755)
        shutil.copytree(prosody.data_dir, work / "data")
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "prosody:prosody", str(work)], check=True)
        config = work / "migrator.cfg.lua"
        stores = '"accounts", "roster", "vcard", "private"'
        config.write_text(
            f'input {{ type = "internal"; path = "{work / "data"}"; '
            f'hosts = {{ ["{prosody.domain}"] = {{ {stores} }} }} }}\n'
            'output { type = "xep0227" }\n'
        )
        config.chmod(0o644)
        for _ in range(2):  # the second run appends a duplicate <scram-credentials>
            r = subprocess.run([MIGRATOR, "--config", str(config), "input", "output"],
                               capture_output=True, text=True, timeout=120)  # fmt: skip
            assert r.returncode == 0 and "Done" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
        out.mkdir()
        for user in USERS:
            name = f"{user}@{prosody.domain}.xml"
            if (SYSTEM_DATA / name).exists():
                shutil.move(SYSTEM_DATA / name, out / name)


def test_accounts_and_rosters_move_from_prosody(tmp_path):
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("VINESCTL_")}
    cli_env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    reason = prosody_available() or (None if MIGRATOR else "prosody-migrator is not installed")
    if reason:
        _missing(reason)
    domain = f"m{uuid.uuid4().hex[:10]}.test"  # unique: the migrator's files share one directory
    prosody = ProsodyInstance(tmp_path, domain=domain)
    prosody.start()
    try:
        for user, password in USERS.items():
            prosody.register(user, password)
        rosters = {
            "alice": {f"bob@{domain}": ("Bob", ["Friends"]), f"carol@{domain}": ("C.", [])},
            "bob": {f"alice@{domain}": ("Alice", ["Friends", "Work"])},
            "carol": {},
        }
        for user, roster in rosters.items():
            asyncio.run(login(domain, user, USERS[user], prosody.port, prosody.ca_file, roster))
    finally:
        prosody.stop()
    exported = tmp_path / "exported"
    migrate(prosody, exported)
    assert all(
        (exported / f"{u}@{domain}.xml").read_text().count("<scram-credentials") == 2 for u in USERS
    )

    directory = tmp_path / "ours"
    r = vinesctl("server", "init", "--dir", str(directory), "--domain", domain, "--port", "0",
                 "--direct-tls-port", "0", env=cli_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    config = directory / "vines.toml"
    r = vinesctl("server", "import", "--config", str(config), str(exported), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert sorted(report["imported"]) == [f"{u}@{domain}" for u in sorted(USERS)]
    assert sorted(report["without_sha256"]) == report["imported"]  # Prosody keeps SHA-1 only
    r = vinesctl("server", "start", "--config", str(config), env=cli_env)
    assert r.returncode == 0, r.stderr
    try:
        state = json.loads((directory / "vines.state.json").read_text())
        port = next(li["port"] for li in state["listeners"] if li["kind"] == "c2s-starttls")
        for user, password in USERS.items():
            seen = asyncio.run(login(domain, user, password, port, directory / f"{domain}.crt", {}))
            expected = {
                jid: (name, sorted(groups)) for jid, (name, groups) in rosters[user].items()
            }
            assert seen["roster"] == expected, user
            # the SHA-256 attempt fails like a wrong password (no keys to prove it with), and
            # the client goes on to SCRAM-SHA-1, whose keys came over from Prosody
            assert seen["failed"] == ["SCRAM-SHA-256"] and seen["mechanism"] == "SCRAM-SHA-1"
    finally:
        vinesctl("server", "stop", "--config", str(config), env=cli_env)
