"""Two nodes sharing Redis and PostgreSQL serve one domain as one service (issue 13): chat,
presence, subscriptions and iqs between users on different nodes, messages crossing nodes kept
in the store until their recipient's node says they were delivered, the cluster-wide session
cap and resource conflict, and the nodes' records."""

from __future__ import annotations

import asyncio
import os

from vines_server.xmpp.jid import JID

from tests.support.cluster import Shared, befriend, cluster, raw_bind, until, until_registered
from tests.support.xmpp import DOMAIN, PASSWORD, RawClient, disconnect, slixmpp_client

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


async def test_users_on_two_nodes_chat_and_see_each_other(shared: Shared) -> None:
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("alice")
        await n1.add_user("bob")
        await befriend(n1.server.storage, ALICE, BOB)
        alice = await slixmpp_client(n1, ALICE)
        seen: asyncio.Queue = asyncio.Queue()
        alice.add_event_handler("got_online", seen.put_nowait)
        inbox: asyncio.Queue = asyncio.Queue()
        alice.add_event_handler("message", inbox.put_nowait)
        bob = await slixmpp_client(n2, BOB)
        try:
            online = await asyncio.wait_for(seen.get(), 5)
            assert online["from"].bare == BOB
            bob.send_message(mto=ALICE, mbody="hello across nodes")
            msg = await asyncio.wait_for(inbox.get(), 5)
            assert msg["body"] == "hello across nodes"

            async def sessions_by_node() -> dict[str, int]:
                return {s.name: s.sessions for s in await n1.server.cluster.nodes()}

            await until(sessions_by_node, {"n1": 1, "n2": 1})  # as of their last heartbeat
            statuses = {s.name: s for s in await n1.server.cluster.nodes()}
            assert statuses["n2"].address == f"127.0.0.1:{n2.port()}"
            assert statuses["n2"].pid == os.getpid()  # in-process nodes
            assert all(s.alive and 0 <= s.heartbeat_age < 5 for s in statuses.values())
        finally:
            await disconnect(alice, bob)


async def test_a_message_crossing_nodes_stays_stored_until_its_node_delivers_it(
    shared: Shared,
) -> None:
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("alice")
        await n1.add_user("bob")
        storage = n1.server.storage
        alice = await slixmpp_client(n1, ALICE)
        inbox: asyncio.Queue = asyncio.Queue()
        alice.add_event_handler("message", inbox.put_nowait)
        bob = await slixmpp_client(n2, BOB)
        try:
            bob.send_message(mto=ALICE, mbody="delivered and acked")
            assert (await asyncio.wait_for(inbox.get(), 5))["body"] == "delivered and acked"
            await until(lambda: storage.count_offline(ALICE), 0)  # n1's ack cleared it

            # n1 stops reading its channel (a node about to vanish): what crosses is stored
            n1.server.cluster.listener.cancel()
            bob.send_message(mto=ALICE, mbody="kept for the next login")
            await until(lambda: storage.count_offline(ALICE), 1)
            assert inbox.empty()
            await disconnect(alice)
            alice = await slixmpp_client(n1, ALICE, handlers={"message": inbox.put_nowait})
            assert (await asyncio.wait_for(inbox.get(), 5))["body"] == "kept for the next login"
            await until(lambda: storage.count_offline(ALICE), 0)
        finally:
            await disconnect(alice, bob)


async def test_subscription_and_iq_between_nodes(shared: Shared) -> None:
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("alice")
        await n1.add_user("bob")
        alice = await slixmpp_client(n1, ALICE)
        online: asyncio.Queue = asyncio.Queue()
        alice.add_event_handler("got_online", online.put_nowait)
        bob = await slixmpp_client(n2, BOB)  # slixmpp approves and subscribes back
        try:
            alice.send_presence_subscription(pto=BOB)
            assert (await asyncio.wait_for(online.get(), 5))["from"].bare == BOB
            storage = n1.server.storage

            async def subscription() -> str | None:
                item = await storage.get_roster_item(ALICE, BOB)
                return item.subscription if item else None

            await until(subscription, "both")
            # an iq to a full JID on the other node, answered by that client
            assert await alice.plugin["xep_0199"].ping(jid=bob.boundjid.full, timeout=5) >= 0
        finally:
            await disconnect(alice, bob)


async def test_the_session_cap_and_resource_conflicts_are_cluster_wide(shared: Shared) -> None:
    shared.limits = {"sessions_per_account": 2}
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("bob")
        first = await raw_bind(n1, "bob", "desk")
        second = await raw_bind(n2, "bob", "phone")
        try:
            await until_registered(n1, BOB, 2)
            third = await raw_bind(n1, "bob", "tablet")
            assert b"resource-constraint" in third.bound
            third.client.close()
            # the same resource on the other node replaces the first (decision 4)
            again = await raw_bind(n2, "bob", "desk")
            assert b"<jid>" in again.bound
            await first.client.expect_stream_error("conflict")
            again.client.close()
        finally:
            first.client.close()
            second.client.close()


async def test_binds_at_the_same_instant_on_two_nodes_never_exceed_the_session_cap(
    shared: Shared,
) -> None:
    cap, per_node = 3, 4
    shared.limits = {"sessions_per_account": cap}
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("bob")
        clients = []
        try:
            # authenticated first, so that only the binds race
            for harness in (n1, n2):
                for _ in range(per_node):
                    client = await RawClient.connect(harness.port(), harness.pki.ca_file)
                    clients.append(client)
                    await client.starttls()
                    await client.auth_plain("bob", PASSWORD)
                    await client.read_until(rb"<success[^>]*/>")
                    await client.open_stream()

            async def bind(client: RawClient, resource: str) -> bytes:
                await client.send(
                    "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                    f"<resource>r{resource}</resource></bind></iq>"
                )
                return await client.read_until(rb"</iq>")

            replies = await asyncio.gather(*(bind(c, str(i)) for i, c in enumerate(clients)))
            bound = [r for r in replies if b"<jid>" in r]
            refused = [r for r in replies if b"resource-constraint" in r]
            assert (len(bound), len(refused)) == (cap, len(clients) - cap)
            sessions = n1.server.cluster.sessions, n2.server.cluster.sessions
            assert sum(len(s.own(JID.parse(BOB))) for s in sessions) == cap
            await until_registered(n1, BOB, cap)
        finally:
            for client in clients:
                client.close()


async def test_an_accounts_resources_on_two_nodes_share_roster_pushes_and_presence(
    shared: Shared,
) -> None:
    async with cluster(shared, "n1", "n2") as (n1, n2):
        await n1.add_user("bob")
        desk = await slixmpp_client(n1, f"{BOB}/desk")
        seen: asyncio.Queue = asyncio.Queue()
        desk.add_event_handler("presence_available", seen.put_nowait)
        pushes: asyncio.Queue = asyncio.Queue()
        phone = await slixmpp_client(n2, f"{BOB}/phone")
        phone.add_event_handler("roster_update", pushes.put_nowait)
        try:
            available = await asyncio.wait_for(seen.get(), 5)  # its own other resource
            assert available["from"].full == f"{BOB}/phone"
            await desk.update_roster(ALICE, name="Alice")  # a roster set on n1
            push = await asyncio.wait_for(pushes.get(), 5)  # pushed to the resource on n2
            assert ALICE in push["roster"]["items"]
        finally:
            await disconnect(desk, phone)
