"""The bundled server end to end: slixmpp clients over real TLS on loopback."""

from __future__ import annotations

import asyncio

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from tests.support.xmpp import (
    DOMAIN,
    PASSWORD,
    RawClient,
    disconnect,
    slixmpp_client,
)


def collector(client: slixmpp.ClientXMPP, event: str) -> asyncio.Queue:
    queue: asyncio.Queue = asyncio.Queue()
    client.add_event_handler(event, queue.put_nowait)
    return queue


async def next_matching(queue: asyncio.Queue, predicate, timeout: float = 5.0):
    async def loop():
        while True:
            item = await queue.get()
            if predicate(item):
                return item

    return await asyncio.wait_for(loop(), timeout)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_login_with_each_mechanism(harness, mechanism):
    client = await slixmpp_client(harness, f"alice@{DOMAIN}", sasl_mech=mechanism)
    try:
        (session,) = harness.server.sessions
        assert session.info["mechanism"] == mechanism
        assert session.info["tls_version"] in ("TLSv1.2", "TLSv1.3")
    finally:
        await disconnect(client)


async def test_wrong_password_fails(harness):
    with pytest.raises(ConnectionError):
        await slixmpp_client(harness, f"alice@{DOMAIN}", "not the password")


async def test_chat_between_two_users(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    bob = await slixmpp_client(harness, f"bob@{DOMAIN}")
    try:
        inbox = collector(bob, "message")
        alice.send_message(mto=f"bob@{DOMAIN}", mbody="hello bob", mtype="chat")
        msg = await next_matching(inbox, lambda m: m["body"] == "hello bob")
        assert msg["from"] == alice.boundjid
        assert msg["type"] == "chat"
    finally:
        await disconnect(alice, bob)


async def test_full_jid_routing_and_iq_between_clients(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    bob = await slixmpp_client(harness, f"bob@{DOMAIN}")
    try:
        # slixmpp answers pings itself; the iq is routed to bob's full JID and back.
        rtt = await alice.plugin["xep_0199"].ping(bob.boundjid, timeout=5)
        assert rtt >= 0
        with pytest.raises(IqError) as err:
            await alice.plugin["xep_0199"].send_ping(f"bob@{DOMAIN}/nowhere", timeout=5)
        assert err.value.condition == "service-unavailable"
    finally:
        await disconnect(alice, bob)


async def test_subscription_flow_and_presence(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    bob = await slixmpp_client(harness, f"bob@{DOMAIN}")
    bob.auto_authorize = True
    bob.auto_subscribe = False
    try:
        alice_presence = collector(alice, "presence")
        alice.send_presence_subscription(pto=f"bob@{DOMAIN}")
        await next_matching(
            alice_presence,
            lambda p: p["from"].bare == f"bob@{DOMAIN}" and p["type"] == "available",
        )
        roster = await harness.server.storage.get_roster(f"alice@{DOMAIN}")
        assert [(i.jid, i.subscription, i.ask) for i in roster] == [(f"bob@{DOMAIN}", "to", False)]
        bob_roster = await harness.server.storage.get_roster(f"bob@{DOMAIN}")
        assert [(i.jid, i.subscription) for i in bob_roster] == [(f"alice@{DOMAIN}", "from")]
        # bob changes status: alice (subscribed to bob) sees it
        bob.send_presence(pshow="away", pstatus="lunch")
        p = await next_matching(alice_presence, lambda p: p["status"] == "lunch")
        assert p["show"] == "away"
        # bob leaves abruptly: alice still gets unavailable
        bob.transport.abort()
        await next_matching(
            alice_presence,
            lambda p: p["from"].bare == f"bob@{DOMAIN}" and p["type"] == "unavailable",
        )
    finally:
        await disconnect(alice, bob)


async def test_pending_subscription_is_redelivered_at_login(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    try:
        alice.send_presence_subscription(pto=f"bob@{DOMAIN}")
        await asyncio.sleep(0.3)
    finally:
        await disconnect(alice)
    pending = await harness.server.storage.get_pending_in(f"bob@{DOMAIN}")
    assert [c for c, _ in pending] == [f"alice@{DOMAIN}"]
    bob = slixmpp.ClientXMPP(f"bob@{DOMAIN}", PASSWORD)
    bob.auto_authorize = None  # leave the request unanswered
    requests = collector(bob, "presence_subscribe")
    bob.ca_certs = str(harness.pki.ca_file)
    bob.enable_direct_tls = False
    bob.add_event_handler("session_start", lambda _: bob.send_presence())
    bob.connect(host="127.0.0.1", port=harness.port())
    try:
        request = await asyncio.wait_for(requests.get(), 10)
        assert request["from"] == f"alice@{DOMAIN}"
    finally:
        await disconnect(bob)


async def test_roster_set_pushes_to_interested_resources(harness):
    one = await slixmpp_client(harness, f"alice@{DOMAIN}/one")
    two = await slixmpp_client(harness, f"alice@{DOMAIN}/two")
    try:
        pushes = collector(two, "roster_update")
        await one.update_roster(f"bob@{DOMAIN}", name="Bob", groups=["Friends"])
        iq = await next_matching(pushes, lambda _: True)
        item = iq["roster"]["items"][slixmpp.JID(f"bob@{DOMAIN}")]
        assert item["name"] == "Bob"
        assert item["groups"] == ["Friends"]
        stored = await harness.server.storage.get_roster_item(f"alice@{DOMAIN}", f"bob@{DOMAIN}")
        assert stored.groups == ("Friends",)
        await one.del_roster_item(f"bob@{DOMAIN}")
        stored = await harness.server.storage.get_roster_item(f"alice@{DOMAIN}", f"bob@{DOMAIN}")
        assert stored is None
    finally:
        await disconnect(one, two)


async def test_offline_message_is_delivered_with_a_delay_stamp(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    try:
        alice.send_message(mto=f"bob@{DOMAIN}", mbody="while you were out")
        await asyncio.sleep(0.3)
    finally:
        await disconnect(alice)
    assert await harness.server.storage.count_offline(f"bob@{DOMAIN}") == 1
    bob = slixmpp.ClientXMPP(f"bob@{DOMAIN}", PASSWORD)
    bob.register_plugin("xep_0203")
    inbox = collector(bob, "message")
    bob.ca_certs = str(harness.pki.ca_file)
    bob.enable_direct_tls = False
    bob.add_event_handler("session_start", lambda _: bob.send_presence())
    bob.connect(host="127.0.0.1", port=harness.port())
    try:
        msg = await asyncio.wait_for(inbox.get(), 10)
        assert msg["body"] == "while you were out"
        assert msg["from"].bare == f"alice@{DOMAIN}"
        assert msg["delay"]["stamp"] is not None
        assert await harness.server.storage.count_offline(f"bob@{DOMAIN}") == 0
    finally:
        await disconnect(bob)


async def test_message_to_unknown_account_bounces_service_unavailable(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    try:
        errors = collector(alice, "message_error")
        alice.send_message(mto=f"nobody@{DOMAIN}", mbody="hello?")
        err = await asyncio.wait_for(errors.get(), 5)
        assert err["error"]["condition"] == "service-unavailable"
        assert err["from"] == f"nobody@{DOMAIN}"
    finally:
        await disconnect(alice)


async def test_message_to_a_foreign_domain_bounces_not_allowed(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    try:
        errors = collector(alice, "message_error")
        alice.send_message(mto="someone@example.org", mbody="hello?")
        err = await asyncio.wait_for(errors.get(), 5)
        assert err["error"]["condition"] == "not-allowed"
        assert err["error"]["type"] == "cancel"
        assert "example.org" in err["error"]["text"]
    finally:
        await disconnect(alice)


async def test_server_answers_disco_ping_version_time_uptime(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    try:
        info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=5)
        features = set(info["disco_info"]["features"])
        for feature in (
            "urn:xmpp:ping",
            "jabber:iq:version",
            "urn:xmpp:time",
            "jabber:iq:last",
            "vcard-temp",
            "http://jabber.org/protocol/disco#info",
            "msgoffline",
        ):
            assert feature in features
        assert ("server", "im", None, "Vines") in info["disco_info"]["identities"]
        # XEP-0157 contact addresses (a XEP-0128 form): the domain's admins
        fields = {
            f.get("var"): [v.text for v in f.findall("{jabber:x:data}value")]
            for f in info.xml.iter("{jabber:x:data}field")
        }
        assert fields["FORM_TYPE"] == ["http://jabber.org/network/serverinfo"]
        assert fields["admin-addresses"] == [f"xmpp:admin@{DOMAIN}"]
        account = await alice.plugin["xep_0030"].get_info(jid=f"alice@{DOMAIN}", timeout=5)
        assert ("account", "registered", None, None) in account["disco_info"]["identities"]
        assert await alice.plugin["xep_0199"].ping(DOMAIN, timeout=5) >= 0
        version = await alice.plugin["xep_0092"].get_version(DOMAIN, timeout=5)
        assert version["software_version"]["name"].startswith("Vines")
        uptime = await alice.plugin["xep_0012"].get_last_activity(DOMAIN, timeout=5)
        assert uptime["last_activity"]["seconds"] >= 0
        t = await alice.plugin["xep_0202"].get_entity_time(DOMAIN, timeout=5)
        assert "<tzo>+00:00</tzo>" in str(t) and "Z</utc>" in str(t)
        with pytest.raises(IqError) as err:
            iq = alice.make_iq_get(queryxmlns="urn:example:unknown", ito=DOMAIN)
            await iq.send(timeout=5)
        assert err.value.condition == "service-unavailable"
    finally:
        await disconnect(alice)


async def test_vcard_and_private_storage(harness):
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    bob = await slixmpp_client(harness, f"bob@{DOMAIN}")
    try:
        vcard = alice.plugin["xep_0054"].make_vcard()
        vcard["FN"] = "Alice Liddell"
        await alice.plugin["xep_0054"].publish_vcard(vcard, timeout=5)
        got = await bob.plugin["xep_0054"].get_vcard(f"alice@{DOMAIN}", timeout=5)
        assert got["vcard_temp"]["FN"] == "Alice Liddell"
        with pytest.raises(IqError) as err:
            await bob.plugin["xep_0054"].publish_vcard(vcard, jid=f"alice@{DOMAIN}", timeout=5)
        assert err.value.condition == "service-unavailable"  # as for a missing account (T-08)
        # private storage, raw XML: set, then get back
        iq = alice.make_iq_set()
        iq.append(
            slixmpp.ET.fromstring(
                "<query xmlns='jabber:iq:private'>"
                "<note xmlns='urn:test:notes'>secret</note></query>"
            )
        )
        await iq.send(timeout=5)
        get = alice.make_iq_get()
        get.append(
            slixmpp.ET.fromstring(
                "<query xmlns='jabber:iq:private'><note xmlns='urn:test:notes'/></query>"
            )
        )
        result = await get.send(timeout=5)
        assert "secret" in str(result)
    finally:
        await disconnect(alice, bob)


async def test_same_resource_replaces_the_old_session_with_conflict(harness):
    first = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await first.login("alice")
    await first.send(
        "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
    )  # a second bind on the same stream is refused
    assert b"not-allowed" in await first.read_until(rb"</iq>")
    (session,) = harness.server.sessions
    resource = session.jid.resource
    second = await slixmpp_client(harness, f"alice@{DOMAIN}/{resource}")
    try:
        await first.expect_stream_error("conflict")
        assert [str(s.jid) for s in harness.server.sessions] == [f"alice@{DOMAIN}/{resource}"]
    finally:
        await disconnect(second)


async def test_session_cap_refuses_the_eleventh(harness):
    clients = []
    try:
        for _ in range(10):
            client = await RawClient.connect(harness.port(), harness.pki.ca_file)
            await client.login("alice")
            clients.append(client)
        extra = await RawClient.connect(harness.port(), harness.pki.ca_file)
        clients.append(extra)
        refused = await extra.login("alice")
        assert b"type='error'" in refused
        assert b"<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in refused
        assert b"<resource-limit-exceeded xmlns='urn:xmpp:errors'/>" in refused
        assert len(harness.server.sessions) == 10
    finally:
        for client in clients:
            client.close()


async def test_direct_tls_login_with_alpn(harness):
    client = slixmpp.ClientXMPP(f"alice@{DOMAIN}", PASSWORD)
    client.ca_certs = str(harness.pki.ca_file)
    client.enable_starttls = False
    client.enable_direct_tls = True
    started = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: started.set_result(True))
    client.connect(host="127.0.0.1", port=harness.port("c2s-direct-tls"))
    try:
        await asyncio.wait_for(started, 10)
        (session,) = harness.server.sessions
        assert session.info["listener"] == "c2s-direct-tls"
    finally:
        await disconnect(client)
