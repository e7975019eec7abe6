"""Two nodes sharing Redis and PostgreSQL serve one domain as one service (issue 13): chat,
presence, subscriptions and iqs between users on different nodes, messages crossing nodes kept
in the store until their recipient's node says they were delivered, the cluster-wide session
cap and resource conflict, and the nodes' records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from vines_server.storage.base import RosterItem

from tests.support.cluster import Shared, cluster
from tests.support.xmpp import DOMAIN, disconnect, slixmpp_client

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


@pytest.fixture
async def shared(postgres, redis, pki, tmp_path: Path) -> Shared:
    return Shared(pki, tmp_path, await postgres.create_database(), postgres, redis)


async def befriend(storage, a: str, b: str) -> None:
    await storage.put_roster_item(a, RosterItem(b, subscription="both"))
    await storage.put_roster_item(b, RosterItem(a, subscription="both"))


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
            statuses = {s.name: s for s in await n1.server.cluster.nodes()}
            assert set(statuses) == {"n1", "n2"}
            assert all(s.alive for s in statuses.values())
        finally:
            await disconnect(alice, bob)
