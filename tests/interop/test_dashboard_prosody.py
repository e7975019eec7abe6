"""The dashboard and `vinesctl presence` against a real Prosody, which has neither our presence
feed nor our load: they poll the XEP-0133 online users list and say so, and show no load."""

from __future__ import annotations

import asyncio
from contextlib import suppress

import pytest

from tests.dashboard.conftest import screen_text, until
from tests.support.prosody import ProsodyInstance
from vinesctl.connection import ConnectionSettings
from vinesctl.dashboard.app import Dashboard

pytestmark = pytest.mark.interop

ADMIN_PW = "prosody admin pass phrase"
USER_PW = "prosody user pass phrase"


async def login(prosody: ProsodyInstance, user: str, password: str):
    import slixmpp

    client = slixmpp.ClientXMPP(f"{user}@{prosody.domain}/phone", password)
    client.ca_certs = str(prosody.ca_file)
    client.enable_direct_tls = False
    started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def on_start(_event) -> None:
        await client.get_roster()
        client.send_presence()
        started.done() or started.set_result(True)

    client.add_event_handler("session_start", on_start)
    client.connect(host=prosody.host, port=prosody.port)
    await asyncio.wait_for(started, 15)
    return client


async def logout(client) -> None:
    client.disconnect()
    with suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(client.disconnected, 5)


async def test_dashboard_polls_prosody_and_says_so(prosody: ProsodyInstance):
    prosody.register("admin", ADMIN_PW)
    prosody.register("alice", USER_PW)
    settings = ConnectionSettings(
        jid=f"admin@{prosody.domain}",
        password=ADMIN_PW,
        host=prosody.host,
        port=prosody.port,
        ca=str(prosody.ca_file),
    )
    app = Dashboard(settings, poll_interval=0.5)
    async with app.run_test(size=(150, 40)) as pilot:
        await until(lambda: app.watcher.mode == "polling", 15, "polling")
        await until(lambda: f"admin@{prosody.domain}" in app.table.keys, 10, "first poll")
        text = screen_text(app)
        assert "polling" in text and "no presence feed" in text
        await until(lambda: app.history.source == "none", 10, "no load")
        assert "load unavailable" in screen_text(app)
        alice = await login(prosody, "alice", USER_PW)
        await until(lambda: f"alice@{prosody.domain}" in app.table.keys, 10, "alice by polling")
        # Prosody's detail lines give the sessions
        row = app.board.get(f"alice@{prosody.domain}")
        assert list(row.resources) == ["phone"]
        # details through Prosody's XEP-0133 commands (user-stats, get-user-roster)
        await pilot.press("slash", *"alice", "enter", "enter")
        await until(lambda: type(app.screen).__name__ == "DetailScreen", 5, "detail")
        screen = app.screen
        await until(lambda: screen.extra, 15, "details from prosody")
        assert screen.extra["roster"] == "0 contacts"
        assert screen.extra["sessions"] == "1: phone"
        await pilot.press("escape")
        await logout(alice)
        await until(lambda: f"alice@{prosody.domain}" not in app.table.keys, 10, "alice gone")
