"""Components as part of the service: discovery, the server's load presence, their own load
shown to admins (the admin listing and the presence feed)."""

from __future__ import annotations

import asyncio

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.components.conftest import SPARE, WORK, connect_component
from tests.server.test_presence_feed import FeedReader, start_feed, wait_for
from tests.support.adhoc import Refused, ours, refused, run
from tests.support.xmpp import DOMAIN, disconnect, slixmpp_client

NS_LOAD = "urn:vinesctl:load:0"


async def test_disco_items_lists_every_configured_component_connected_or_not(harness) -> None:
    component = await connect_component(harness)
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    items = await alice.plugin["xep_0030"].get_items(jid=DOMAIN, timeout=5)
    listed = {(jid, name) for jid, _node, name in items["disco_items"]["items"]}
    assert {(WORK, "Work queue"), (SPARE, "Spare")} <= listed
    await disconnect(alice, component)


async def test_disco_queries_to_a_component_are_answered_by_it(harness) -> None:
    component = await connect_component(harness)
    component.plugin["xep_0030"].add_identity("automation", "worker", name="Worker", jid=WORK)
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    info = await alice.plugin["xep_0030"].get_info(jid=WORK, timeout=5)
    assert ("automation", "worker", None, "Worker") in info["disco_info"]["identities"]
    # and a component discovers the server and the other components
    items = await component.plugin["xep_0030"].get_items(jid=DOMAIN, ifrom=WORK, timeout=5)
    assert WORK in {jid for jid, _n, _name in items["disco_items"]["items"]}
    await disconnect(alice, component)


async def test_a_component_subscribes_to_the_server_load_without_approval(harness) -> None:
    component = await connect_component(harness)
    loads: asyncio.Queue = asyncio.Queue()
    subscribed = asyncio.Event()
    component.register_handler(
        Callback(
            "load",
            MatchXPath(f"{{jabber:component:accept}}presence/{{{NS_LOAD}}}load"),
            lambda p: loads.put_nowait(p),
        )
    )
    component.add_event_handler("presence_subscribed", lambda _p: subscribed.set())
    component.send_presence(pto=DOMAIN, pfrom=WORK, ptype="subscribe")
    await asyncio.wait_for(subscribed.wait(), 5)
    first = await asyncio.wait_for(loads.get(), 5)
    assert first["from"] == DOMAIN and first["to"] == WORK
    load = first.xml.find(f"{{{NS_LOAD}}}load")
    assert int(load.get("capacity")) > 0
    # the server keeps no roster for a component
    assert await harness.server.storage.get_roster(WORK) == []
    # unsubscribing is answered, like a user's
    unsubscribed = asyncio.Event()
    component.add_event_handler("presence_unsubscribed", lambda _p: unsubscribed.set())
    component.send_presence(pto=DOMAIN, pfrom=WORK, ptype="unsubscribe")
    await asyncio.wait_for(unsubscribed.wait(), 5)
    await disconnect(component)


async def test_component_load_is_shown_to_admins(harness) -> None:
    admin = await slixmpp_client(harness, f"admin@{DOMAIN}")
    admin.register_plugin("xep_0050")
    reader = FeedReader(admin)
    await start_feed(admin)
    await asyncio.wait_for(reader.snapshot_done.wait(), 5)

    component = await connect_component(harness)
    component.send_presence(
        pto=DOMAIN, pfrom=WORK, pshow="dnd", pstatus="busy"
    )  # then one with a load element
    await wait_for(lambda: reader.board.get(WORK) == "available")
    presence = component.make_presence(pto=DOMAIN, pfrom=WORK, pshow="away")
    load = presence.xml.makeelement(f"{{{NS_LOAD}}}load", {"jobs": "3", "capacity": "4"})
    presence.xml.append(load)
    presence.send()

    async def listed() -> dict[str, str]:
        answer = await run(admin, ours("components"))
        return {row["domain"]: row for row in answer.rows()}[WORK]

    async def until_load() -> dict[str, str]:
        while "jobs=3" not in (row := await listed())["load"]:
            await asyncio.sleep(0.05)
        return row

    row = await asyncio.wait_for(until_load(), 5)
    assert row["connected"] == "true" and row["show"] == "away"
    assert row["address"].startswith("127.0.0.1:") and row["since"]
    assert row["load"] == "capacity=4 jobs=3"
    spare = {r["domain"]: r for r in (await run(admin, ours("components"))).rows()}[SPARE]
    assert spare["connected"] == "false" and spare["name"] == "Spare"

    await disconnect(component)
    await wait_for(lambda: reader.board.get(WORK) == "unavailable")
    await disconnect(admin)


async def test_the_listing_is_for_admins_only(harness) -> None:
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    alice.register_plugin("xep_0050")
    err = await refused(run(alice, ours("components")))
    assert isinstance(err, Refused) and err.condition == "forbidden"
    await disconnect(alice)
