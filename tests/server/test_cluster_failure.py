"""When part of a cluster fails (issue 13): a node killed with SIGKILL is purged by the
survivors, its users' contacts see them go unavailable within the TTL plus a second, and
messages to them wait in the store for their next login; while Redis is away each node serves
its own users and refuses cross-node stanzas with remote-server-timeout, then rejoins."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.support.cluster import (
    Shared,
    befriend,
    cluster,
    node_process,
    start_node,
    until,
    until_registered,
)
from tests.support.xmpp import DOMAIN, disconnect, slixmpp_client

ALICE, BOB, CAROL, DAVE = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol", "dave"))


async def test_a_killed_node_is_purged_and_its_users_messages_wait_for_them(
    shared: Shared,
) -> None:
    ttl, heartbeat = 2.0, 0.5
    async with cluster(shared, "n1", "n2", ttl=ttl, heartbeat=heartbeat) as (n1, n2):
        storage = n1.server.storage
        for user in ("alice", "bob", "carol"):
            await n1.add_user(user)
        await befriend(storage, ALICE, BOB)
        await befriend(storage, CAROL, BOB)
        doomed = await node_process(shared, "n3", ttl=ttl, heartbeat=heartbeat)
        alice, carol = await slixmpp_client(n1, ALICE), await slixmpp_client(n2, CAROL)
        bob = None
        try:
            offline = {ALICE: asyncio.Queue(), CAROL: asyncio.Queue()}
            online = {ALICE: asyncio.Queue(), CAROL: asyncio.Queue()}
            for client, jid in ((alice, ALICE), (carol, CAROL)):
                client.add_event_handler("got_offline", offline[jid].put_nowait)
                client.add_event_handler("got_online", online[jid].put_nowait)
            bob = await slixmpp_client(doomed, BOB)
            for jid in (ALICE, CAROL):
                assert (await asyncio.wait_for(online[jid].get(), 5))["from"].bare == BOB

            doomed.kill()
            loop = asyncio.get_running_loop()
            killed = loop.time()
            alice.send_message(mto=BOB, mbody="sent as its node died")
            for jid in (ALICE, CAROL):  # on both survivors, whichever purged n3
                remaining = max(0.0, killed + ttl + 1 - loop.time())
                gone = await asyncio.wait_for(offline[jid].get(), remaining)
                assert gone["from"].bare == BOB
            assert "n3" not in {s.name for s in await n1.server.cluster.nodes()}
            alice.send_message(mto=BOB, mbody="sent after it was purged")
            await until(lambda: storage.count_offline(BOB), 2)

            inbox: asyncio.Queue = asyncio.Queue()
            await disconnect(bob)
            bob = await slixmpp_client(n2, BOB, handlers={"message": inbox.put_nowait})
            bodies = {(await asyncio.wait_for(inbox.get(), 5))["body"] for _ in range(2)}
            assert bodies == {"sent as its node died", "sent after it was purged"}
        finally:
            doomed.kill()
            await disconnect(*[c for c in (alice, carol, bob) if c is not None])


async def test_while_redis_is_away_nodes_serve_their_own_users_and_rejoin(
    shared: Shared, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vines_server.cluster")
    async with cluster(shared, "n1", "n2") as (n1, n2):
        for user in ("alice", "bob", "dave"):
            await n1.add_user(user)
        inbox = {jid: asyncio.Queue() for jid in (ALICE, BOB, DAVE)}
        bob = await slixmpp_client(n2, BOB, handlers={"message": inbox[BOB].put_nowait})
        dave = await slixmpp_client(n1, DAVE, handlers={"message": inbox[DAVE].put_nowait})
        errors: asyncio.Queue = asyncio.Queue()
        alice = await slixmpp_client(n1, ALICE, handlers={"message_error": errors.put_nowait})
        try:
            alice.send_message(mto=BOB, mbody="before")
            assert (await asyncio.wait_for(inbox[BOB].get(), 5))["body"] == "before"

            await asyncio.to_thread(shared.redis.stop)
            await until_state(n1, False)
            alice.send_message(mto=DAVE, mbody="local while Redis is away")
            assert (await asyncio.wait_for(inbox[DAVE].get(), 5))["body"].startswith("local")
            alice.send_message(mto=BOB, mbody="refused")
            refused = await asyncio.wait_for(errors.get(), 5)
            assert refused["error"]["condition"] == "remote-server-timeout"
            assert refused["error"]["type"] == "wait"

            await asyncio.to_thread(shared.redis.start)  # empty: the nodes register again
            await until_state(n1, True)
            await until_registered(n1, BOB, 1)
            await until_registered(n2, ALICE, 1)
            alice.send_message(mto=BOB, mbody="after")
            assert (await asyncio.wait_for(inbox[BOB].get(), 5))["body"] == "after"
        finally:
            await disconnect(alice, bob, dave)
    lines = [r.getMessage() for r in caplog.records if r.name == "vines_server.cluster"]

    def logged(node: str, what: str) -> int:
        return len([m for m in lines if m.startswith(f"cluster node {node}: Redis {what}")])

    assert logged("n1", "unreachable") == logged("n1", "reachable") == 1  # one per change
    # n2 saw the outage only if one of its heartbeats fell into it
    assert logged("n2", "unreachable") == logged("n2", "reachable") <= 1
    assert not [m for m in caplog.text.splitlines() if shared.redis.password in m]


async def until_state(harness, connected: bool) -> None:
    """The node's heartbeat noticed Redis going or coming back."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while harness.server.cluster.connected is not connected:
        assert loop.time() < deadline, f"the node never saw Redis {'back' if connected else 'go'}"
        await asyncio.sleep(0.02)


async def test_redis_restarted_under_load_loses_no_message(shared: Shared) -> None:
    """Each message alice sends while Redis goes and comes back either reaches bob or comes
    back to her as an error; whatever was in flight waits in the store for bob's next login."""
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("alice")
        await n1.add_user("bob")
        storage = n1.server.storage
        got: set[str] = set()
        bob = await slixmpp_client(n2, BOB, handlers={"message": lambda m: got.add(m["id"])})
        bounced: set[str] = set()
        alice = await slixmpp_client(
            n1, ALICE, handlers={"message_error": lambda m: bounced.add(m["id"])}
        )
        sent: list[str] = []
        try:

            def send(body: str) -> str:
                message = alice.make_message(mto=BOB, mbody=body, mtype="chat")
                message.send()
                sent.append(message["id"])
                return message["id"]

            outage = None
            for i in range(60):
                send(f"m{i}")
                if i == 15:
                    outage = asyncio.ensure_future(asyncio.to_thread(shared.redis.stop))
                if i == 35:
                    await outage
                    outage = asyncio.ensure_future(asyncio.to_thread(shared.redis.start))
                await asyncio.sleep(0.01)  # a steady flow, not a burst
            await outage
            await until_state(n1, True)
            await until_registered(n1, BOB, 1)
            last = send("last")
            await until(lambda: asyncio.sleep(0, last in got), True)

            await disconnect(bob)  # what was in flight is in the store: the next login gets it
            bob = await slixmpp_client(n2, BOB, handlers={"message": lambda m: got.add(m["id"])})
            await until(lambda: storage.count_offline(BOB), 0)
            await until(lambda: asyncio.sleep(0, set(sent) <= got | bounced), True)
            assert bounced  # some were refused while Redis was away: the test saw an outage
        finally:
            await disconnect(alice, bob)


async def test_a_node_that_stops_leaves_the_cluster_at_once(
    shared: Shared, caplog: pytest.LogCaptureFixture
) -> None:
    async with cluster(shared, "n1") as (n1,):
        await n1.add_user("alice")
        await n1.add_user("bob")
        await befriend(n1.server.storage, ALICE, BOB)
        n2 = await start_node(shared, "n2")
        alice = await slixmpp_client(n1, ALICE)
        online: asyncio.Queue = asyncio.Queue()
        offline: asyncio.Queue = asyncio.Queue()
        alice.add_event_handler("got_online", online.put_nowait)
        alice.add_event_handler("got_offline", offline.put_nowait)
        bob = await slixmpp_client(n2, BOB)
        try:
            assert (await asyncio.wait_for(online.get(), 5))["from"].bare == BOB
            await n2.server.stop()  # its sessions close as on one node: bob goes unavailable
            assert (await asyncio.wait_for(offline.get(), 5))["from"].bare == BOB
            assert [s.name for s in await n1.server.cluster.nodes()] == ["n1"]
            assert (await n1.server.cluster.directory.resources(BOB)) == [{}]
        finally:
            await disconnect(alice, bob)
    assert "stopped beating" not in caplog.text  # it left; nobody had to purge it


async def test_a_message_to_a_live_node_between_two_subscriptions_is_published_again(
    shared: Shared,
) -> None:
    """Redis drops a subscriber it finds slow, and a node's listener subscribes again up to a
    heartbeat after an outage: meanwhile a publish reaches nobody. Its node is alive, so the
    stored message is published again instead of waiting for the recipient's next login. The
    node n3 is played here by a plain Redis client: alive, bob bound there, listening late."""
    import redis.asyncio as aioredis
    from vines_server.cluster.directory import Directory, Entry, channel

    async with cluster(shared, "n1", heartbeat=0.5) as (n1,):
        await n1.add_user("alice")
        await n1.add_user("bob")
        client = aioredis.Redis(
            port=shared.redis.port, password=shared.redis.password, decode_responses=True
        )
        n3 = Directory(client, "n3", ttl=30)
        await n3.beat({"address": "", "sessions": 1, "load": 0.0, "pid": 0}, [])
        presence = f"<presence xmlns='jabber:client' from='{BOB}/phone'/>"
        await n3.register(f"{BOB}/phone", Entry("n3", True, 0, True, presence))
        alice = await slixmpp_client(n1, ALICE)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            alice.send_message(mto=BOB, mbody="published while nobody listened")
            await until(lambda: n1.server.storage.count_offline(BOB), 1)  # held, then published
            await pubsub.subscribe(channel("n3"))  # late: the first publish found nobody

            async def next_message() -> dict:
                while (item := await pubsub.get_message(timeout=5)) is None:
                    pass
                return json.loads(item["data"])

            message = await asyncio.wait_for(next_message(), 10)
            assert message["to"] == f"{BOB}/phone"
            assert "published while nobody listened" in message["xml"]
            assert message["ack"]  # still held: n3's ack would clear the stored copy
        finally:
            await pubsub.aclose()
            await client.aclose()
            await disconnect(alice)


async def test_a_burst_of_directory_calls_waits_for_connections_instead_of_an_outage(
    shared: Shared, caplog: pytest.LogCaptureFixture
) -> None:
    """More commands in flight than the node's Redis connections (a login storm) wait their
    turn: none fails, and the node does not take the burst for Redis going away."""
    from vines_server.cluster.node import REDIS_CONNECTIONS

    caplog.set_level(logging.INFO, logger="vines_server.cluster")
    async with cluster(shared, "n1") as (n1,):
        node = n1.server.cluster
        answers = await asyncio.gather(
            *(node.directory.alive("n1") for _ in range(8 * REDIS_CONNECTIONS))
        )
        assert all(answers)
        await node.liveness.beat()
        assert node.connected
    assert not [r for r in caplog.records if "unreachable" in r.getMessage()]
