"""The cluster directory's scripts on a real redis-server (issue 13): a dead node is purged by
exactly one survivor however many try at once, a node's entry is removed only by that node (a
resource that moved to another node keeps its new entry), and a purged node that beats again
is told so, to register its sessions again; presence changes are announced to the feeds only
while a node runs one."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis
from vines_server.cluster.directory import PRESENCE, Directory, Entry


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


async def test_presence_changes_are_announced_only_while_a_node_runs_a_feed(redis) -> None:
    r = client(redis)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(PRESENCE)
        n1, n2 = Directory(r, "n1", ttl=60), Directory(r, "n2", ttl=60)
        await n2.register("bob@d/desk", Entry("n2", available=True, presence="<p/>"), True)
        await n1.watch_presence(True)  # a feed starts on n1
        await n2.register("bob@d/phone", Entry("n2", available=True, presence="<q/>"), True)
        await n2.register("bob@d/phone", Entry("n2", priority=5), False)  # not a presence change
        await n2.unregister("bob@d/desk", True)
        await n1.watch_presence(False)
        await n2.unregister("bob@d/phone", True)

        await r.publish(PRESENCE, json.dumps({"full": "end", "xml": None}))  # in order: the last
        said: list[dict] = []

        async def until_the_end() -> None:
            while not said or said[-1]["full"] != "end":
                item = await pubsub.get_message(timeout=1)
                if item is not None:
                    said.append(json.loads(item["data"]))

        await asyncio.wait_for(until_the_end(), 10)
        assert [(m["full"], m["xml"]) for m in said] == [
            ("bob@d/phone", "<q/>"),
            ("bob@d/desk", None),
            ("end", None),
        ]
    finally:
        await pubsub.aclose()
        await r.aclose()
