"""The watcher against a live server under concurrent logins: the board ends up exactly as the
server's sessions, with no gap in the feed and no session reported twice or lost between the
snapshot and the deltas."""

from __future__ import annotations

import asyncio
import random

from tests.dashboard.conftest import admin_settings, until
from tests.support.xmpp import DOMAIN, disconnect, slixmpp_client
from vinesctl.dashboard.feed import Watcher
from vinesctl.dashboard.model import Change

USERS = 24


class Recorder:
    """The watcher's listener: keeps everything it is told."""

    def __init__(self) -> None:
        self.seen: list[Change] = []
        self.states: list[str] = []
        self.notes: list[str] = []

    def changes(self, changes: list[Change]) -> None:
        self.seen.extend(changes)

    def status(self, state: str, text: str) -> None:
        self.states.append(state)

    def load(self, sample) -> None:
        pass

    def note(self, text: str, level: str = "info") -> None:
        self.notes.append(text)


def server_view(harness) -> dict[str, str]:
    """Full JID -> show, for every available session of the domain."""
    out = {}
    for session in harness.server.sessions:
        if session.presence is not None and session.jid.domain == DOMAIN:
            show = session.presence.findtext("{jabber:client}show") or ""
            out[str(session.jid)] = show
    return out


def board_view(board) -> dict[str, str]:
    return {
        f"{bare}/{name}": res.show
        for bare, row in board.rows.items()
        for name, res in row.resources.items()
    }


async def test_snapshot_and_deltas_agree_with_the_server_under_concurrent_logins(live):
    for i in range(USERS):
        await live.add_user(f"user{i}")
    recorder = Recorder()
    watcher = Watcher(admin_settings(live), recorder, want_load=False)
    clients = []
    rng = random.Random(5)

    async def login(i: int) -> None:
        await asyncio.sleep(rng.random() * 0.3)
        clients.append(await slixmpp_client(live, f"user{i}@{DOMAIN}/r{i}"))

    first = [asyncio.ensure_future(login(i)) for i in range(USERS // 2)]
    task = asyncio.ensure_future(watcher.run())  # the feed starts while logins are under way
    try:
        await asyncio.gather(*first)
        second = [asyncio.ensure_future(login(i)) for i in range(USERS // 2, USERS)]
        await until(watcher.synced.is_set, 10, "snapshot")
        await asyncio.gather(*second)
        for client in clients[::3]:
            client.send_presence(pshow="away")
        gone = clients[1::4]
        for client in gone:
            await disconnect(client)
        left = {str(c.boundjid) for c in gone}
        await until(lambda: not (left & set(server_view(live))), 10, "the server saw the logouts")
        await until(lambda: board_view(watcher.board) == server_view(live), 10, "agreement")
        assert len(board_view(watcher.board)) == USERS - len(gone) + 1  # + the admin
        assert watcher.tracker.gaps == 0
        assert watcher.connections == 1
        # per session: online first, never twice in a row, offline only after online
        history: dict[str, list[str]] = {}
        for change in recorder.seen:
            history.setdefault(change.jid, []).append(change.kind)
        for jid, kinds in history.items():
            assert kinds[0] == "online", (jid, kinds)
            online = False
            for kind in kinds:
                if kind == "online":
                    assert not online, (jid, kinds)
                    online = True
                elif kind == "offline":
                    assert online, (jid, kinds)
                    online = False
                else:
                    assert online, (jid, kinds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for client in clients:
            if client not in clients[1::4]:
                await disconnect(client)


async def test_a_gap_in_the_feed_starts_a_new_feed(live):
    from vinesctl.xmpp.presence import FeedMessage

    recorder = Recorder()
    watcher = Watcher(admin_settings(live), recorder, want_load=False)
    task = asyncio.ensure_future(watcher.run())
    alice = await slixmpp_client(live, f"alice@{DOMAIN}/phone")
    try:
        await until(lambda: f"alice@{DOMAIN}" in watcher.board, 10, "alice on the board")
        first = watcher.tracker.id
        # a message that skips a number: something was lost
        lost = FeedMessage(first, watcher.tracker.seq + 2, "delta", False, [])
        watcher._feed_message(lost)
        await until(lambda: watcher.tracker.id not in (None, first), 5, "a new feed")
        await until(lambda: not watcher.tracker.in_snapshot, 5, "its snapshot")
        assert any("gap" in note for note in recorder.notes)
        # the new snapshot changed nothing: the board already had it right
        assert not [c for c in recorder.seen if c.phase == "snapshot" and "alice" in c.jid][1:]
        await disconnect(alice)
        await until(lambda: f"alice@{DOMAIN}" not in watcher.board, 5, "deltas of the new feed")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_keepalive_pings_keep_a_live_connection(live):
    recorder = Recorder()
    watcher = Watcher(admin_settings(live), recorder, want_load=False, keepalive=0.2)
    task = asyncio.ensure_future(watcher.run())
    try:
        await until(lambda: watcher.mode == "live", 10, "live")
        await asyncio.sleep(1.0)  # several pings answered
        assert watcher.mode == "live" and watcher.connections == 1
        assert not any("ping" in note for note in recorder.notes)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
