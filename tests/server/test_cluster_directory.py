"""The cluster directory's scripts on a real redis-server (issue 13): a dead node is purged by
exactly one survivor however many try at once, a node's entry is removed only by that node (a
resource that moved to another node keeps its new entry), and a purged node that beats again
is told so, to register its sessions again."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from vines_server.cluster.directory import Directory, Entry


def client(redis):
    return aioredis.Redis.from_url(redis.url, password=redis.password, decode_responses=True)


async def test_one_survivor_purges_a_dead_node_and_a_moved_resource_stays(redis) -> None:
    r = client(redis)
    try:
        dead, n1, n2 = (Directory(r, name, ttl=60) for name in ("dead", "n1", "n2"))
        assert await dead.beat({}, []) is True  # first beat: joined
        await dead.register("bob@d/desk", Entry("dead", available=True))
        await dead.register("bob@d/phone", Entry("dead"))
        await n1.register("bob@d/phone", Entry("n1"))  # phone moved to n1 (conflict)
        await dead.unregister("bob@d/phone")  # the old node's late clean-up: n1's stays
        await dead.register("bob@d/tablet", Entry("dead"))
        await n2.register("bob@d/tablet", Entry("n2"))  # moved, and the old node died first
        assert (await n1.resources("bob@d"))[0]["phone"].node == "n1"
        assert await n1.purge("dead") is None  # its liveness key is still there
        await r.delete("vines:alive:dead")  # expired

        results = await asyncio.gather(*(d.purge("dead") for d in (n1, n2, n1, n2)))
        purged = [res for res in results if res is not None]
        assert len(purged) == 1
        assert [full for full, _ in purged[0]] == ["bob@d/desk"]
        remaining = (await n1.resources("bob@d"))[0]
        assert {r: e.node for r, e in remaining.items()} == {"phone": "n1", "tablet": "n2"}
        assert "dead" not in {s.name for s in await n1.nodes()}

        assert await dead.beat({}, []) is True  # it was still running: told to re-register
        assert await dead.beat({}, []) is False
    finally:
        await r.aclose()
