"""The dashboard shows components beside users: a component's presence to the server (its load)
comes through the admins' presence feed, so the board has a row for it, with its show and
status, until it disconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.components.conftest import WORK, component_sections, connect_component
from tests.dashboard.conftest import admin_settings, until
from tests.dashboard.test_feed import Recorder
from tests.support.xmpp import DOMAIN, PKI, disconnect, running_server, slixmpp_client
from vinesctl.dashboard.feed import Watcher


async def test_a_component_is_on_the_board_beside_users(tmp_path: Path, pki: PKI) -> None:
    async with running_server(tmp_path, pki, **component_sections(tmp_path)) as live:
        for user in ("admin", "alice"):
            await live.add_user(user)
        watcher = Watcher(admin_settings(live), Recorder(), want_load=False)
        task = asyncio.ensure_future(watcher.run())
        alice = await slixmpp_client(live, f"alice@{DOMAIN}/phone")
        component = await connect_component(live)
        try:
            presence = component.make_presence(pto=DOMAIN, pfrom=WORK, pshow="dnd")
            presence["status"] = "4/4 jobs"
            presence.xml.append(
                presence.xml.makeelement(
                    "{urn:vinesctl:load:0}load", {"jobs": "4", "capacity": "4"}
                )
            )
            presence.send()
            await until(lambda: WORK in watcher.board, 10, "the component on the board")
            assert f"alice@{DOMAIN}" in watcher.board  # beside the users
            row = watcher.board.get(WORK)
            assert row.show == "dnd" and row.status == "4/4 jobs"
            # a dashboard opened later has it from the feed's snapshot
            later = Watcher(admin_settings(live), Recorder(), want_load=False)
            second = asyncio.ensure_future(later.run())
            await until(later.synced.is_set, 10, "the second snapshot")
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
            assert later.board.get(WORK).show == "dnd"
            await disconnect(component)
            await until(lambda: WORK not in watcher.board, 10, "the component gone")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await disconnect(alice)
