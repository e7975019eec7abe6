"""Signals to the real main loop (`python -m vines_server` in a subprocess), as an administrator
used to Prosody or ejabberd sends them: SIGHUP reopens the log file and reloads vines.toml, and
the server keeps serving."""

from __future__ import annotations

import asyncio
import signal

from tests.server.test_admin_process import (
    ADMIN,
    Live,
    create_accounts,
    start_logged,
    wait_for,
    write_config,
)
from tests.support.adhoc import admin, listed
from tests.support.xmpp import DOMAIN, PASSWORD, disconnect, slixmpp_client

CAROL = f"carol@{DOMAIN}"


async def test_sighup_reopens_the_log_and_reloads_the_config(tmp_path, pki):
    await create_accounts(tmp_path, PASSWORD, ADMIN, CAROL)
    config = write_config(tmp_path, pki)
    state_file, log = tmp_path / "vines.state.json", tmp_path / "vines.log"
    proc = await start_logged(config, log)
    try:
        await wait_for(state_file.exists)
        live = Live(pki, state_file)
        carol = await slixmpp_client(live, CAROL)
        carol.register_plugin("xep_0050")
        assert admin("add-user") not in await listed(carol)  # not an administrator yet

        # logrotate moves the file away, the operator makes carol an admin, then: kill -HUP
        log.rename(tmp_path / "vines.log.1")
        config.write_text(config.read_text().replace(f'["{ADMIN}"]', f'["{ADMIN}", "{CAROL}"]'))
        proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: log.exists() and "configuration reloaded" in log.read_text())

        text = log.read_text()
        assert "SIGHUP" in text and "changed: admins" in text
        assert proc.returncode is None  # still running, same process
        assert admin("add-user") in await listed(carol)  # the reloaded admin list applies
        await disconnect(carol)

        # a broken vines.toml on SIGHUP is logged and changes nothing
        config.write_text(config.read_text() + "\n[limits]\nbogus = 1\n")
        proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: "was not reloaded" in log.read_text())
        assert proc.returncode is None
        again = await slixmpp_client(live, CAROL)
        again.register_plugin("xep_0050")
        assert admin("add-user") in await listed(again)
        await disconnect(again)
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
