"""The dashboard against a live bundled server (Pilot, `App.run_test()`): slixmpp clients log
in, change their presence and log out, and the table follows; the polling fallback; reconnection
after the server goes away; the load panel."""

from __future__ import annotations

import asyncio

from slixmpp.xmlstream import ET

from tests.dashboard.conftest import admin_settings, screen_text, until
from tests.support.ports import free_port
from tests.support.xmpp import DOMAIN, disconnect, running_server, slixmpp_client
from vinesctl.dashboard.app import Dashboard

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
ADMIN = f"admin@{DOMAIN}"


def row(app, bare):
    keys = app.table.keys
    return app.table.row_text(keys.index(bare)) if bare in keys else None


async def test_table_follows_logins_status_changes_and_logouts(live):
    app = Dashboard(admin_settings(live))
    async with app.run_test(size=(150, 40)):
        await until(lambda: app.watcher.mode == "live", what="the feed")
        await until(lambda: ADMIN in app.table.keys, what="the admin's own session")
        assert "live" in app.status_bar.state

        alice = await slixmpp_client(live, f"{ALICE}/phone")
        await until(lambda: ALICE in app.table.keys, 5, "alice online")
        assert row(app, ALICE)[1:3] == ("phone", "online")

        repaints = app.table.repaints
        alice.send_presence(pshow="away", pstatus="at lunch")
        await until(lambda: row(app, ALICE)[2] == "away", 5, "alice away")
        assert row(app, ALICE)[3] == "at lunch"
        assert app.table.repaints > repaints  # repainted in place, not rebuilt

        # the client, from the caps node (XEP-0115) of its presence
        presence = alice.make_presence(pshow="away", pstatus="at lunch")
        caps = {"node": "https://gajim.org", "ver": "x", "hash": "sha-1"}
        presence.xml.append(ET.Element("{http://jabber.org/protocol/caps}c", caps))
        presence.send()
        await until(lambda: row(app, ALICE)[4], 5, "alice's client")
        assert row(app, ALICE)[4] == "gajim.org"

        bob1 = await slixmpp_client(live, f"{BOB}/desk")
        bob2 = await slixmpp_client(live, f"{BOB}/laptop")
        await until(lambda: row(app, BOB) and row(app, BOB)[1] == "desk, laptop", 5, "bob x2")
        assert app.table.keys == sorted(app.table.keys)

        await disconnect(alice)
        await until(lambda: ALICE not in app.table.keys, 5, "alice offline")
        await disconnect(bob1)
        await until(lambda: row(app, BOB)[1] == "laptop", 5, "one of bob's sessions gone")
        await disconnect(bob2)
        await until(lambda: BOB not in app.table.keys, 5, "bob offline")

        log = [e.text for e in app.events]
        assert any(t.startswith("online") and "alice@vines.test/phone" in t for t in log)
        assert any(t.startswith("changed") and "at lunch" in t for t in log)
        assert any(t.startswith("offline") and "bob@vines.test/laptop" in t for t in log)
        # the server's load arrived (pushed as presence) and moved
        await until(lambda: app.history.current is not None, 5, "load")
        assert app.history.source == "push"
        assert len(app.history.online) >= 1
        text = screen_text(app)
        assert "online   " in text and "stanzas  " in text
        assert "pushed as presence" in text
        # each node of the service: this server on its own is one
        await until(lambda: app.history.nodes, 5, "the nodes")
        [node] = app.history.nodes
        assert node.alive and f"node {node.name}: " in screen_text(app)


async def test_polling_fallback_says_so(live):
    app = Dashboard(admin_settings(live), use_feed=False, poll_interval=0.3)
    async with app.run_test(size=(150, 40)):
        await until(lambda: app.watcher.mode == "polling", what="polling")
        await until(lambda: ADMIN in app.table.keys, what="first poll")
        assert "polling" in screen_text(app)
        alice = await slixmpp_client(live, f"{ALICE}/phone")
        await until(lambda: ALICE in app.table.keys, 5, "alice by polling")
        alice.send_presence(pshow="dnd")
        await until(lambda: row(app, ALICE)[2] == "dnd", 5, "alice dnd by polling")
        await disconnect(alice)
        await until(lambda: ALICE not in app.table.keys, 5, "alice gone by polling")


async def test_filter_and_detail(live):
    app = Dashboard(admin_settings(live))
    alice = await slixmpp_client(live, f"{ALICE}/phone")
    bob = await slixmpp_client(live, f"{BOB}/desk")
    try:
        async with app.run_test(size=(150, 40)) as pilot:
            await until(lambda: {ALICE, BOB} <= set(app.table.keys), what="snapshot")
            await pilot.press("slash", *"bob")
            await until(lambda: app.table.keys == [BOB], 3, "filtered")
            assert "1 shown" in app.status_bar.counts
            await pilot.press("enter")  # leave the filter
            await pilot.press("enter")  # details of the selected user
            await until(lambda: type(app.screen).__name__ == "DetailScreen", 3, "detail")
            screen = app.screen
            assert screen.bare == BOB
            await until(lambda: screen.extra, 10, "roster and last login")
            assert screen.extra["roster"] == "0 contacts"
            assert screen.extra["sessions"] == "1: desk"
            assert screen.extra["addresses"] == "127.0.0.1"
            assert screen.extra["last login"].startswith("20")  # an ISO stamp
            assert "desk" in screen_text(app)
            # updates keep arriving while the detail screen is on top
            alice.send_presence(pshow="xa")
            await until(lambda: app.board.get(ALICE).show == "xa", 5, "alice xa behind it")
            await asyncio.sleep(1.2)  # a tick of the load panel too
            assert app.screen is screen
            bob.send_presence(pstatus="reading")
            await until(lambda: "reading" in screen_text(app), 5, "bob's detail refreshed")
            await pilot.press("escape")
            await pilot.press("slash", "escape")
            await until(lambda: len(app.table.keys) == 3, 3, "filter cleared")
    finally:
        for client in (alice, bob):  # one at a time: together, slixmpp waits out the timeout
            await disconnect(client)


async def test_message_announce_and_kick_keys(live):
    alice = await slixmpp_client(live, f"{ALICE}/phone")
    bob = await slixmpp_client(live, f"{BOB}/desk")
    got_alice: asyncio.Queue = asyncio.Queue()
    got_bob: asyncio.Queue = asyncio.Queue()
    alice.add_event_handler("message", lambda m: got_alice.put_nowait(m["body"]))
    bob.add_event_handler("message", lambda m: got_bob.put_nowait(m["body"]))
    kicked = asyncio.get_running_loop().create_future()
    alice.add_event_handler("disconnected", lambda _e: kicked.done() or kicked.set_result(1))
    app = Dashboard(admin_settings(live))
    try:
        async with app.run_test(size=(150, 40)) as pilot:
            await until(lambda: {ALICE, BOB} <= set(app.table.keys), what="snapshot")
            await pilot.press("slash", *"alice", "enter")
            await until(lambda: app.table.selected == ALICE, 3, "alice selected")

            await pilot.press("m")
            await until(lambda: type(app.screen).__name__ == "PromptScreen", 3, "prompt")
            await pilot.press(*"hello alice", "enter")
            assert await asyncio.wait_for(got_alice.get(), 5) == "hello alice"

            await pilot.press("a")
            await until(lambda: type(app.screen).__name__ == "PromptScreen", 3, "prompt")
            await pilot.press(*"restart at noon", "enter")
            assert "restart at noon" in await asyncio.wait_for(got_bob.get(), 5)

            await pilot.press("k")
            await until(lambda: type(app.screen).__name__ == "ConfirmScreen", 3, "confirm")
            await pilot.press("y")
            await until(lambda: ALICE not in app.table.keys, 5, "alice kicked off the table")
            await asyncio.wait_for(kicked, 5)
            assert any(e.text == f"kicked {ALICE}" for e in app.events)
    finally:
        await disconnect(bob)
        if not kicked.done():
            await disconnect(alice)


async def test_reconnects_with_backoff_after_connection_loss(tmp_path, pki):
    port = free_port()
    listeners = {"c2s_port": port, "c2s_direct_tls_port": 0}
    first = running_server(tmp_path / "a", pki, presence={"interval": 0.2}, listeners=listeners)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    harness = await first.__aenter__()
    await harness.add_user("admin")
    app = Dashboard(admin_settings(harness, port), backoff=(0.2, 0.4))
    async with app.run_test(size=(150, 40)):
        await until(lambda: app.watcher.mode == "live", what="live")
        await first.__aexit__(None, None, None)
        await until(lambda: app.watcher.mode in ("reconnecting", "connecting"), 5, "lost")
        assert "reconnecting" in screen_text(app) or "connecting" in screen_text(app)
        again = running_server(tmp_path / "b", pki, presence={"interval": 0.2}, listeners=listeners)
        harness = await again.__aenter__()
        try:
            await harness.add_user("admin")
            await until(lambda: app.watcher.mode == "live", 15, "live again")
            await until(lambda: ADMIN in app.table.keys, 5, "snapshot after reconnecting")
            assert app.watcher.connections == 2
            assert any("disconnected" in e.text for e in app.events)
        finally:
            app.watcher.backoff = (30.0,)
            await again.__aexit__(None, None, None)
            await asyncio.sleep(0)


async def test_non_admin_gets_one_clear_error(live):
    settings = admin_settings(live)
    settings.jid = ALICE
    app = Dashboard(settings)
    async with app.run_test(size=(120, 30)):
        await until(lambda: app.error is not None, 10, "the refusal")
    assert app.return_code == 1
    assert app.error.line() == (
        "vines.test shows who is online to its administrators only: "
        "use a profile whose account is an admin of the server"
    )


async def test_unreachable_server_fails_at_once(live):
    app = Dashboard(admin_settings(live, port=free_port()))
    async with app.run_test(size=(120, 30)):
        await until(lambda: app.error is not None, 10, "the failure")
    assert "connection refused" in app.error.line()
    assert app.return_code == 1
