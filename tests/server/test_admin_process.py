"""restart and shutdown through the real main loop: `python -m vines_server` in a subprocess.

restart stops in order and runs the same command line again in the same process (same pid,
new listeners); shutdown ends it with exit status 0.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from vines_server.storage import SQLiteStorage
from vines_server.xmpp.sasl.credentials import derive_all

from tests.support.adhoc import admin, run
from tests.support.xmpp import DOMAIN, PKI, TEST_ITERATIONS, disconnect, slixmpp_client

ADMIN = f"admin@{DOMAIN}"


@dataclass
class Live:
    """Just what slixmpp_client needs: the CA and the STARTTLS port of the running process."""

    pki: PKI
    state_file: Path

    def port(self) -> int:
        state = json.loads(self.state_file.read_text())
        return next(li["port"] for li in state["listeners"] if li["kind"] == "c2s-starttls")


def write_config(tmp: Path, pki: PKI) -> Path:
    config = tmp / "vines.toml"
    config.write_text(
        f"""
[server]
admins = ["{ADMIN}"]
[domains."{DOMAIN}"]
certificate = "{pki.cert}"
key = "{pki.key}"
[listeners]
bind = ["127.0.0.1"]
c2s_port = 0
c2s_direct_tls_port = false
[storage]
path = "{tmp / "vines.sqlite"}"
[limits]
pbkdf2_iterations = {TEST_ITERATIONS}
"""
    )
    return config


async def start_logged(config: Path, log: Path) -> asyncio.subprocess.Process:
    """`python -m vines_server` logging to `log` (the tests read it), its output discarded."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vines_server", "--config", str(config), "--log-file", str(log),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def create_accounts(tmp: Path, password: str, *jids: str) -> None:
    """Accounts in the store a `write_config(tmp, ...)` server will open."""
    storage = SQLiteStorage(tmp / "vines.sqlite")
    await storage.open()
    for jid in jids:
        await storage.create_account(jid, derive_all(password, TEST_ITERATIONS))
    await storage.close()


async def wait_for(predicate, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def admin_client(live: Live):
    client = await slixmpp_client(live, ADMIN)
    client.register_plugin("xep_0050")
    return client


async def test_restart_then_shutdown(tmp_path, pki):
    storage = SQLiteStorage(tmp_path / "vines.sqlite")
    await storage.open()
    await storage.create_account(ADMIN, derive_all("correct horse battery staple", TEST_ITERATIONS))
    await storage.close()
    config = write_config(tmp_path, pki)
    state_file = tmp_path / "vines.state.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vines_server", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_for(state_file.exists)
        first = json.loads(state_file.read_text())
        live = Live(pki, state_file)
        client = await admin_client(live)
        answer = await run(client, admin("restart"), {"delay": "0"})
        assert answer.notes == [("info", "the server restarts in 0 seconds")]
        await disconnect(client)

        def restarted() -> bool:
            try:
                return json.loads(state_file.read_text())["started"] != first["started"] or (
                    json.loads(state_file.read_text())["listeners"] != first["listeners"]
                )
            except (OSError, ValueError):
                return False

        await wait_for(restarted)
        second = json.loads(state_file.read_text())
        assert second["pid"] == first["pid"] == proc.pid  # the same process, run again
        assert proc.returncode is None

        client = await admin_client(live)
        answer = await run(client, admin("shutdown"), {"delay": "0"})
        assert answer.notes == [("info", "the server shuts down in 0 seconds")]
        await disconnect(client)
        code = await asyncio.wait_for(proc.wait(), 20)
        stderr = (await proc.stderr.read()).decode()
        assert code == 0, stderr
        assert "shutdown requested by admin@vines.test" in stderr
        assert not state_file.exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
