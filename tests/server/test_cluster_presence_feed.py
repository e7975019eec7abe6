"""The admin presence feed across a cluster (issue 13): an admin on node 1 sees in the snapshot
the available users of node 2, then their logins, changes of show and logouts as deltas, and
each of them going unavailable when their node dies and is purged."""

from __future__ import annotations

import asyncio

from tests.server.test_presence_feed import NS_FORWARD, FeedReader, start_feed, wait_for
from tests.support.cluster import Shared, cluster, node_process, raw_bind, until_registered
from tests.support.xmpp import DOMAIN, disconnect, slixmpp_client

ADMIN, BOB, CAROL = f"admin@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"


def shows(reader: FeedReader, received: list, jid: str) -> list[str]:
    """The <show/> of each presence of `jid` the feed carried, in order ('' for none);
    `received` keeps the feed elements taken from the reader's queue."""
    while not reader.messages.empty():
        received.append(reader.messages.get_nowait())
    out = []
    for feed in received:
        for fwd in feed.findall(f"{{{NS_FORWARD}}}forwarded"):
            presence = fwd.find("{jabber:client}presence")
            if presence.get("from") == jid:
                out.append(presence.findtext("{jabber:client}show") or "")
    return out


async def test_an_admin_on_one_node_follows_the_users_of_the_other(shared: Shared) -> None:
    async with cluster(shared, "n1", "n2") as (n1, n2):
        for user in ("admin", "bob", "carol"):
            await n1.add_user(user)
        bob = await slixmpp_client(n2, BOB)
        boss = await slixmpp_client(n1, ADMIN, plugins=("xep_0050",))
        reader = FeedReader(boss)
        carol, received = None, []
        try:
            await until_registered(n1, BOB, 1)
            await start_feed(boss)
            await asyncio.wait_for(reader.snapshot_done.wait(), 5)
            bob_full = str(bob.boundjid)
            assert bob_full in reader.snapshot  # on n2, available before the feed started

            carol = await slixmpp_client(n2, CAROL)  # logs in on n2: a delta
            await wait_for(lambda: str(carol.boundjid) in reader.online())
            bob.send_presence(pshow="dnd", pstatus="focus")  # changes show on n2
            await wait_for(lambda: "dnd" in shows(reader, received, bob_full))
            await disconnect(carol)  # logs out on n2
            await wait_for(lambda: reader.board.get(str(carol.boundjid)) == "unavailable")
            carol = None

            assert (bob_full, "available") in reader.deltas
            assert reader.online() == {bob_full, str(boss.boundjid)}
            assert reader.seqs == list(range(1, len(reader.seqs) + 1))
        finally:
            await disconnect(*[c for c in (bob, boss, carol) if c is not None])


async def test_no_remote_change_is_lost_while_the_feed_starts(shared: Shared) -> None:
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("admin")
        users = [f"user{i}" for i in range(20)]
        for user in users:
            await n1.add_user(user)
        boss = await slixmpp_client(n1, ADMIN, plugins=("xep_0050",))
        reader = FeedReader(boss)

        async def login(user: str):
            bound = await raw_bind(n2, user, "r")
            await bound.client.send("<presence/>")
            return bound.client

        # logins on n2 race with the start of the feed on n1: each lands in the snapshot, as
        # a delta or both (the same state twice across nodes), never nowhere
        first = asyncio.gather(*(login(u) for u in users[:10]))
        await start_feed(boss)
        clients = list(await first)
        clients += await asyncio.gather(*(login(u) for u in users[10:]))
        expected = {f"{u}@{DOMAIN}/r" for u in users} | {str(boss.boundjid)}
        try:
            await wait_for(lambda: reader.online() == expected)
            assert len(reader.snapshot) == len(set(reader.snapshot))
            assert reader.seqs == list(range(1, len(reader.seqs) + 1))
        finally:
            for client in clients:
                client.close()
            await disconnect(boss)


async def test_users_of_a_killed_node_go_unavailable_in_the_feed(shared: Shared) -> None:
    ttl, heartbeat = 2.0, 0.5
    async with cluster(shared, "n1", ttl=ttl, heartbeat=heartbeat) as (n1,):
        for user in ("admin", "bob"):
            await n1.add_user(user)
        doomed = await node_process(shared, "n3", ttl=ttl, heartbeat=heartbeat)
        boss = await slixmpp_client(n1, ADMIN, plugins=("xep_0050",))
        reader = FeedReader(boss)
        bob = await slixmpp_client(doomed, BOB)
        try:
            await start_feed(boss)
            await wait_for(lambda: str(bob.boundjid) in reader.online())
            doomed.kill()
            # purged by n1 once n3's key expired: the feed announces bob unavailable
            await wait_for(
                lambda: reader.board.get(str(bob.boundjid)) == "unavailable", ttl + 1 + ttl
            )
            assert reader.seqs == list(range(1, len(reader.seqs) + 1))
        finally:
            doomed.kill()
            await disconnect(bob, boss)
