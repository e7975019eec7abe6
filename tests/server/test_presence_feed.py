"""The admin presence feed: a consistent snapshot, then deltas, no gap and no duplicate."""

from __future__ import annotations

import asyncio

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.support.xmpp import DOMAIN, RawClient, disconnect, slixmpp_client

NODE = "urn:vinesctl:presence-feed"
NS_FEED = "urn:vinesctl:presence-feed:0"
NS_FORWARD = "urn:xmpp:forward:0"


class FeedReader:
    """Collects feed messages and rebuilds the board the way a client would."""

    def __init__(self, client) -> None:
        self.messages: asyncio.Queue = asyncio.Queue()
        self.seqs: list[int] = []
        self.snapshot_done = asyncio.Event()
        self.board: dict[str, str] = {}  # full JID -> "available" | "unavailable"
        self.snapshot: list[str] = []
        self.deltas: list[tuple[str, str]] = []
        # slixmpp's "message" event only fires for messages with a body
        client.register_handler(
            Callback(
                "feed", MatchXPath(f"{{jabber:client}}message/{{{NS_FEED}}}feed"), self._on_message
            )
        )

    def _on_message(self, msg) -> None:
        feed = msg.xml.find(f"{{{NS_FEED}}}feed")
        if feed is None:
            return
        self.seqs.append(int(feed.get("seq")))
        for fwd in feed.findall(f"{{{NS_FORWARD}}}forwarded"):
            presence = fwd.find("{jabber:client}presence")
            jid, state = presence.get("from"), presence.get("type", "available")
            self.board[jid] = state
            if feed.get("kind") == "snapshot":
                self.snapshot.append(jid)
            else:
                self.deltas.append((jid, state))
        if feed.get("last") == "true":
            self.snapshot_done.set()
        self.messages.put_nowait(feed)

    def online(self) -> set[str]:
        return {jid for jid, state in self.board.items() if state == "available"}


async def start_feed(client) -> str:
    iq = await client.plugin["xep_0050"].send_command(DOMAIN, NODE)
    assert iq["command"]["status"] == "completed"
    return iq["command"]["form"]["values"]["feed"]


async def wait_for(predicate, timeout: float = 5.0) -> None:
    async def loop():
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def admin(harness):
    await harness.add_user("admin")
    client = await slixmpp_client(harness, f"admin@{DOMAIN}")
    client.register_plugin("xep_0050")
    yield client
    await disconnect(client)


async def test_snapshot_then_deltas(harness, admin):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    reader = FeedReader(admin)
    feed_id = await start_feed(admin)
    assert feed_id
    await asyncio.wait_for(reader.snapshot_done.wait(), 5)
    assert str(alice.boundjid) in reader.snapshot
    bob = await slixmpp_client(harness, f"bob@{DOMAIN}")
    await wait_for(lambda: str(bob.boundjid) in reader.online())
    bob.send_presence(pshow="dnd", pstatus="focus")
    await wait_for(lambda: reader.deltas.count((str(bob.boundjid), "available")) >= 2)
    await disconnect(bob)
    await wait_for(lambda: reader.board.get(str(bob.boundjid)) == "unavailable")
    assert reader.seqs == list(range(1, len(reader.seqs) + 1))
    await disconnect(alice)


async def test_no_gap_or_duplicate_under_concurrent_logins(harness, admin):
    users = [await harness.add_user(f"user{i}") for i in range(30)]
    reader = FeedReader(admin)

    async def login(jid: str) -> RawClient:
        client = await RawClient.connect(harness.port(), harness.pki.ca_file)
        await client.login(jid.split("@")[0])
        await client.send("<presence/>")
        return client

    # logins race with the start of the feed: some land in the snapshot, some as deltas
    first = asyncio.gather(*(login(j) for j in users[:15]))
    await asyncio.sleep(0.05)
    await start_feed(admin)
    clients = await first
    clients += await asyncio.gather(*(login(j) for j in users[15:]))
    # every <presence/> processed (the admin's own session counts too), then the expectation
    await wait_for(lambda: sum(s.available for s in harness.server.sessions) == len(users) + 1)
    expected = {str(s.jid) for s in harness.server.sessions if s.available}
    await wait_for(lambda: reader.online() == expected)
    # a session is either in the snapshot or announced by a delta, never both
    assert not set(reader.snapshot) & {jid for jid, _ in reader.deltas}
    assert len(reader.snapshot) == len(set(reader.snapshot))
    assert reader.seqs == list(range(1, len(reader.seqs) + 1))
    for client in clients:
        client.close()
    await wait_for(lambda: reader.online() == {str(admin.boundjid)})


async def test_non_admin_cannot_start_a_feed(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    alice.register_plugin("xep_0050")
    try:
        with pytest.raises(IqError) as err:
            await alice.plugin["xep_0050"].send_command(DOMAIN, NODE)
        assert err.value.condition in ("forbidden", "item-not-found")
    finally:
        await disconnect(alice)
