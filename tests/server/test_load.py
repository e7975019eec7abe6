"""The server's own presence: load pushed to subscribed admins, refused to others."""

from __future__ import annotations

import asyncio

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from tests.support.xmpp import DOMAIN, disconnect, running_server, slixmpp_client

NS_LOAD = "urn:vinesctl:load:0"


@pytest.fixture
async def fast(tmp_path, pki):
    async with running_server(tmp_path, pki, presence={"interval": 0.2}) as h:
        for user in ("admin", "alice"):
            await h.add_user(user)
        yield h


def load_of(presence) -> dict[str, str] | None:
    el = presence.xml.find(f"{{{NS_LOAD}}}load")
    return dict(el.attrib) if el is not None else None


async def test_admin_subscribes_to_the_domain_and_sees_load_move(fast):
    admin = await slixmpp_client(fast, f"admin@{DOMAIN}")
    loads: asyncio.Queue = asyncio.Queue()

    def on_presence(p):
        if p["from"] == DOMAIN and load_of(p):
            loads.put_nowait(p)

    admin.add_event_handler("presence", on_presence)
    admin.send_presence_subscription(pto=DOMAIN)
    first = await asyncio.wait_for(loads.get(), 5)
    assert load_of(first)["online"] == "1"
    assert first["status"].startswith("1 online")
    alice = await slixmpp_client(fast, f"alice@{DOMAIN}")
    try:
        while True:
            update = await asyncio.wait_for(loads.get(), 5)
            if load_of(update)["online"] == "2":
                break
        assert int(load_of(update)["capacity"]) == 10_000
        assert int(load_of(update)["memory_kib"]) > 0
        # the subscription persists: at the next login the probe restarts the feed
        await disconnect(admin)
        admin = await slixmpp_client(fast, f"admin@{DOMAIN}")
        admin.add_event_handler("presence", on_presence)
        again = await asyncio.wait_for(loads.get(), 5)
        assert load_of(again)["online"] == "2"
    finally:
        await disconnect(admin, alice)


async def test_non_admin_is_refused(fast):
    alice = await slixmpp_client(fast, f"alice@{DOMAIN}")
    try:
        answers: asyncio.Queue = asyncio.Queue()
        alice.add_event_handler("presence_unsubscribed", answers.put_nowait)
        alice.send_presence_subscription(pto=DOMAIN)
        answer = await asyncio.wait_for(answers.get(), 5)
        assert answer["from"] == DOMAIN
        iq = alice.make_iq_get(ito=DOMAIN)
        iq.append(ET.Element(f"{{{NS_LOAD}}}load"))
        with pytest.raises(IqError) as err:
            await iq.send(timeout=5)
        assert err.value.condition == "forbidden"
    finally:
        await disconnect(alice)


async def test_admin_queries_the_load_once(fast):
    admin = await slixmpp_client(fast, f"admin@{DOMAIN}")
    try:
        iq = admin.make_iq_get(ito=DOMAIN)
        iq.append(ET.Element(f"{{{NS_LOAD}}}load"))
        result = await iq.send(timeout=5)
        load = result.xml.find(f"{{{NS_LOAD}}}load")
        assert load.get("online") == "1"
        assert load.find(f"{{{NS_LOAD}}}listener").get("name") == "c2s"
        info = await admin.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=5)
        assert NS_LOAD in info["disco_info"]["features"]
    finally:
        await disconnect(admin)
