"""XEP-0198 stream management over the wire, raw XML: the feature, enable, both counters, the
server's <r/>, resumption (only by the same account: T-12), an h too high (T-13), the bound on
what a client leaves unacknowledged, and the precise <failed/> for each misuse."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns
from vines_server.xmpp.jid import JID
from vines_server.xmpp.sm import WRAP
from vines_server.xmpp.stanza import make

from tests.server.test_admin_process import wait_for
from tests.server.test_output_bounds import none_stored as none_stored_for
from tests.support.hold import hold_call
from tests.support.xmpp import DOMAIN, PASSWORD, RawClient, running_server

SM = "urn:xmpp:sm:3"
ENABLE = f"<enable xmlns='{SM}' resume='true'/>"
ENABLED = rb"<enabled [^>]*/>"
BODY = re.compile(rb"<body>([^<]*)</body>")


async def authenticated(harness, local: str) -> tuple[RawClient, bytes]:
    """STARTTLS and SASL done, stream restarted: the features of a bound-to-be stream."""
    raw = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await raw.starttls()
    await raw.auth_plain(local, PASSWORD)
    await raw.read_until(rb"<success[^>]*/>|<success.*?</success>")
    return raw, await raw.open_stream()


async def bound(harness, local: str, resource: str = "r") -> RawClient:
    raw, _ = await authenticated(harness, local)
    await raw.send(
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        f"<resource>{resource}</resource></bind></iq>"
    )
    await raw.read_until(rb"</iq>")
    return raw


async def enabled(harness, local: str) -> tuple[RawClient, str]:
    raw = await bound(harness, local)
    await raw.send(ENABLE)
    answer = await raw.read_until(ENABLED)
    sm_id = re.search(rb"id=[\"']([^\"']+)", answer)
    assert sm_id and b"resume='true'" in answer.replace(b'"', b"'"), answer
    return raw, sm_id.group(1).decode()


def message(to: str, text: str) -> str:
    return f"<message to='{to}@{DOMAIN}' type='chat' id='{text}'><body>{text}</body></message>"


def bodies(data: bytes) -> list[str]:
    return [b.decode() for b in BODY.findall(data)]


async def test_the_feature_is_offered_after_authentication_only(harness):
    raw = await RawClient.connect(harness.port(), harness.pki.ca_file)
    before = await raw.starttls()
    assert SM.encode() not in before
    raw.close()
    raw, after = await authenticated(harness, "alice")
    assert f"<sm xmlns='{SM}'".encode() in after.replace(b'"', b"'")
    raw.close()


async def test_enable_before_bind_twice_or_acks_before_enable_fail_unexpected_request(harness):
    raw, _ = await authenticated(harness, "alice")
    await raw.send(ENABLE)
    await raw.read_until(rb"<failed xmlns=.urn:xmpp:sm:3.[^>]*>\s*<unexpected-request")
    raw.close()
    raw = await bound(harness, "bob")
    await raw.send(f"<r xmlns='{SM}'/>")
    await raw.read_until(rb"<failed[^>]*>\s*<unexpected-request")
    await raw.send(ENABLE)
    await raw.read_until(ENABLED)
    await raw.send(ENABLE)
    await raw.read_until(rb"<failed[^>]*h=.0.[^>]*>\s*<unexpected-request")
    raw.close()


async def test_every_inbound_stanza_counts_and_r_is_answered_in_order(harness):
    raw, _ = await enabled(harness, "alice")
    await raw.send(f"<r xmlns='{SM}'/>")
    await raw.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.0.\s*/>")
    # a ping to the server, a message, a presence, and a session iq the stream answers itself
    await raw.send(
        "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
        + message("bob", "one")
        + "<presence/>"
        + "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
        + f"<r xmlns='{SM}'/>"
    )
    await raw.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.4.\s*/>")
    raw.close()


async def chat(harness, count: int) -> tuple[RawClient, str, RawClient]:
    """bob with stream management, available; alice sends him `count` messages."""
    bob, sm_id = await enabled(harness, "bob")
    await bob.send("<presence/>")
    alice = await bound(harness, "alice")
    for i in range(count):
        await alice.send(message("bob", f"m{i}"))
    return bob, sm_id, alice


def managed(harness, local: str):
    """The server's connection of `local`'s stream-managed session."""
    return next(
        c for c in harness.server.resumptions._by_id.values() if c.session.jid.local == local
    )


async def test_stanzas_the_stream_answers_itself_count_for_the_client(harness):
    """A session iq's result and a refused bind come from the stream, not the router: the
    client counts them, and its h covering them is not too high."""
    raw, _ = await enabled(harness, "alice")
    await raw.send(
        "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
        "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
    )
    await raw.read_until(rb"<iq[^>]*id=.b2.*?</iq>")
    await raw.send(f"<a xmlns='{SM}' h='2'/><r xmlns='{SM}'/>")
    await raw.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.2.\s*/>")
    assert len(managed(harness, "alice").sm) == 0
    raw.close()


async def test_presence_is_not_coalesced_under_stream_management(harness):
    """The output queue replaces a queued presence by a newer one from the same sender; with
    stream management every one is sent, or the client's h would never catch up."""
    bob, _ = await enabled(harness, "bob")
    conn = managed(harness, "bob")
    conn.pause_writing()  # as asyncio does when the socket buffer is full: the queue holds
    for i in range(3):
        conn.send_element(presence_from_alice(i))
    conn.resume_writing()
    got = b""
    while got.count(b"<status>") < 3:
        got += await bob.read_until(rb"</presence>")
    assert len(conn.sm) == 3
    bob.close()


def presence_from_alice(i: int) -> Element:
    presence = make(ns.q(ns.CLIENT, "presence"), {"from": f"alice@{DOMAIN}/a"})
    presence.append(make(ns.q(ns.CLIENT, "status"), text=f"s{i}"))
    return presence


async def test_the_server_asks_for_acks_and_releases_what_is_acknowledged(harness):
    bob, _, alice = await chat(harness, 5)
    got = await bob.read_until(rb"<r xmlns=.urn:xmpp:sm:3.\s*/>")
    assert bodies(got) == [f"m{i}" for i in range(5)]
    session = managed(harness, "bob")
    assert session.sm is not None and len(session.sm) >= 5
    await bob.send(f"<a xmlns='{SM}' h='{session.sm.sent}'/><r xmlns='{SM}'/>")
    await bob.read_until(rb"<a [^>]*/>")
    assert len(session.sm) == 0
    alice.close()
    bob.close()


async def test_a_stream_gone_quiet_is_asked_once_for_what_it_left_unacknowledged(tmp_path, pki):
    """Fewer than REQUEST_EVERY stanzas (here one message) would otherwise wait in the queue
    for more traffic: memory of every idle session, and a resend on resumption."""
    async with running_server(tmp_path, pki, deadlines={"hibernate": 0.2}) as harness:
        await harness.add_user("alice")
        await harness.add_user("bob")
        bob, _, alice = await chat(harness, 1)
        got = await bob.read_until(rb"<r xmlns=.urn:xmpp:sm:3.\s*/>")
        assert bodies(got) == ["m0"]
        session = managed(harness, "bob")
        assert session.sm is not None and len(session.sm) == 1
        await bob.send(f"<a xmlns='{SM}' h='1'/>")
        await wait_for(lambda: len(session.sm) == 0)
        assert await nothing_yet(bob, rb"<r ")  # quiet again with nothing unacked: no request
        alice.close()
        bob.close()


async def test_both_counters_wrap_at_2_to_the_32(harness):
    """Counting 2^32 stanzas over the wire takes too long: the counters start near the wrap."""
    bob, _ = await enabled(harness, "bob")
    await bob.send(f"<presence/><r xmlns='{SM}'/>")
    await bob.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.1.\s*/>")
    conn = managed(harness, "bob")
    conn.stream.sm_in.handled = WRAP - 1  # the server handled 2^32 - 1 of bob's stanzas
    await bob.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    await bob.send("<iq type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>")
    await bob.send(f"<r xmlns='{SM}'/>")
    await bob.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.1.\s*/>")
    conn.sm.ack(conn.sm.sent)  # the pongs, acknowledged
    conn.sm.sent = WRAP - 1  # bob acknowledged 2^32 - 1 stanzas so far
    alice = await bound(harness, "alice")
    await alice.send(message("bob", "after the wrap"))
    await alice.send(message("bob", "and one more"))
    got = b""
    while len(bodies(got)) < 2:
        got += await bob.read_until(rb"</message>")
    assert conn.sm.sent == 1 and len(conn.sm) == 2
    await bob.send(f"<a xmlns='{SM}' h='0'/><r xmlns='{SM}'/>")  # 2^32 mod 2^32
    await bob.read_until(rb"<a [^>]*/>")
    assert len(conn.sm) == 1
    await bob.send(f"<a xmlns='{SM}' h='2'/>")  # one more than sent: too high
    await bob.expect_stream_error("undefined-condition")
    alice.close()


async def test_an_h_acknowledging_more_than_was_sent_is_handled_count_too_high(harness):
    """T-13."""
    bob, _ = await enabled(harness, "bob")
    await bob.send(f"<a xmlns='{SM}' h='1'/>")  # nothing was sent since enable
    data = await bob.expect_stream_error("undefined-condition")
    assert f"<handled-count-too-high xmlns='{SM}'".encode() in data.replace(b'"', b"'")


async def test_resumption_is_refused_for_another_accounts_id_and_unknown_ids(harness):
    """T-12: mallory, authenticated, names alice's SM id: item-not-found, alice unaffected."""
    alice, sm_id = await enabled(harness, "alice")
    await alice.send("<presence/>")
    alice.writer.transport.abort()  # the connection drops: alice's session is detached
    mallory, _ = await authenticated(harness, "mallory")
    await mallory.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    await mallory.read_until(rb"<failed xmlns=.urn:xmpp:sm:3.[^>]*>\s*<item-not-found")
    await mallory.send(f"<resume xmlns='{SM}' previd='no-such-id' h='0'/>")
    await mallory.read_until(rb"<failed[^>]*>\s*<item-not-found")
    mallory.close()

    again, _ = await authenticated(harness, "alice")
    await again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    await again.read_until(rb"<resumed [^>]*/>")
    await again.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    await again.read_until(rb"<iq[^>]*id=.p.")
    again.close()


async def test_a_resumed_session_gets_exactly_what_it_did_not_acknowledge(harness):
    bob, sm_id, alice = await chat(harness, 3)
    got = b""
    while len(bodies(got)) < 3:
        got += await bob.read_until(rb"</message>")
    sent = managed(harness, "bob").sm.sent
    bob.writer.transport.abort()  # acknowledged only m0 (the last three stanzas are m0..m2)
    for i in range(3, 5):  # while bob is detached
        await alice.send(message("bob", f"m{i}"))
    await alice.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    await alice.read_until(rb"<iq[^>]*id=.p.")

    again, _ = await authenticated(harness, "bob")
    await again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='{sent - 2}'/>")
    data = await again.read_until(rb"<resumed [^>]*/>")
    assert b"previd" in data
    got = b""
    while len(bodies(got)) < 4:
        got += await again.read_until(rb"</message>")
    assert bodies(got) == ["m1", "m2", "m3", "m4"]
    alice.close()
    again.close()


async def test_a_client_that_never_acks_is_closed_and_its_messages_go_offline(tmp_path, pki):
    async with running_server(tmp_path, pki, limits={"sm_unacked": 5}) as harness:
        await harness.add_user("alice")
        await harness.add_user("bob")
        bob, _ = await enabled(harness, "bob")
        await bob.send("<presence/>")
        alice = await bound(harness, "alice")
        for i in range(8):
            await alice.send(message("bob", f"m{i}"))
        data = await bob.expect_stream_error("policy-violation")
        assert b"sm_unacked" in data
        while await harness.server.storage.count_offline(f"bob@{DOMAIN}") < 8:
            await asyncio.sleep(0.02)  # kept offline by a task of the router's
        later = await bound(harness, "bob", "later")
        await later.send("<presence/>")
        got = b""
        while len(set(bodies(got))) < 8:
            got += await later.read_until(rb"</message>")
        assert set(bodies(got)) == {f"m{i}" for i in range(8)}
        alice.close()
        later.close()


async def stored(harness, local: str) -> int:
    return await harness.server.storage.count_offline(f"{local}@{DOMAIN}")


async def none_stored(harness, local: str) -> None:
    """Acknowledged, so deleted from the store: soon, as deletions are grouped."""
    await none_stored_for(harness, f"{local}@{DOMAIN}")


async def test_the_senders_h_passes_a_message_only_once_it_is_stored_until_acknowledged(harness):
    """Design decision 6: alice's <a h=.../> covers her message once it is committed, and it
    stays committed while bob (who reads but has not acknowledged it) could still lose it."""
    bob, _ = await enabled(harness, "bob")
    await bob.send("<presence/>")
    alice, _ = await enabled(harness, "alice")
    await alice.send(message("bob", "durable") + f"<r xmlns='{SM}'/>")
    await alice.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.1.\s*/>")
    assert await stored(harness, "bob") == 1
    await bob.read_until(rb"<body>durable</body>")
    assert await stored(harness, "bob") == 1  # read, not acknowledged: still stored
    conn = managed(harness, "bob")
    await bob.send(f"<a xmlns='{SM}' h='{conn.sm.sent}'/>")
    await none_stored(harness, "bob")
    alice.close()
    bob.close()


async def test_unacknowledged_messages_of_an_expired_session_come_later_with_their_stamp(
    tmp_path, pki
):
    """The resumption window passes: what bob read but never acknowledged is delivered at
    his next login from the store, stamped with its arrival; nothing vanishes."""
    async with running_server(tmp_path, pki, deadlines={"resume": 0.2}) as harness:
        await harness.add_user("alice")
        await harness.add_user("bob")
        bob, sm_id, alice = await chat(harness, 3)
        got = b""
        while len(bodies(got)) < 3:
            got += await bob.read_until(rb"</message>")
        assert b"urn:xmpp:delay" not in got  # live: no stamp
        bob.writer.transport.abort()
        await wait_for(lambda: harness.server.sessions.get(JID.parse(f"bob@{DOMAIN}/r")) is None)

        again, _ = await authenticated(harness, "bob")
        await again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
        await again.read_until(rb"<failed[^>]*>\s*<item-not-found")  # expired
        await again.send(
            "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
        )
        await again.read_until(rb"</iq>")
        await again.send("<presence/>")
        later = b""
        while len(bodies(later)) < 3:
            later += await again.read_until(rb"</message>")
        assert bodies(later) == ["m0", "m1", "m2"]
        assert later.count(b"urn:xmpp:delay") == 3
        alice.close()
        again.close()


async def test_offline_messages_leave_the_store_only_once_acknowledged(harness):
    """With stream management, written is not enough: a stored message stays stored until the
    client's h covers it."""
    for i in range(3):
        await harness.server.storage.store_offline(
            f"bob@{DOMAIN}",
            message("bob", f"o{i}").replace("<message ", "<message xmlns='jabber:client' ", 1),
            datetime.now(UTC),
        )
    bob, _ = await enabled(harness, "bob")
    await bob.send("<presence/>")
    got = b""
    while len(bodies(got)) < 3:
        got += await bob.read_until(rb"</message>")
    await bob.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    await bob.read_until(rb"<iq[^>]*id=.p.")  # everything written long ago
    assert await stored(harness, "bob") == 3
    conn = managed(harness, "bob")
    await bob.send(f"<a xmlns='{SM}' h='{conn.sm.sent}'/>")
    await none_stored(harness, "bob")
    bob.close()


async def test_an_unacknowledged_iq_bounces_when_the_session_ends(harness):
    """Its answer will never come: the requester learns it instead of waiting forever."""
    bob = await bound(harness, "bob")
    await bob.send(f"<enable xmlns='{SM}'/>")  # without resumption: a drop ends the session
    await bob.read_until(ENABLED)
    alice = await bound(harness, "alice")
    await alice.send(
        f"<iq type='get' id='v' to='bob@{DOMAIN}/r'><query xmlns='jabber:iq:version'/></iq>"
    )
    await bob.read_until(rb"jabber:iq:version")
    bob.writer.transport.abort()
    answer = await alice.read_until(rb"<iq[^>]*id=.v.*?</iq>")
    assert b"type='error'" in answer.replace(b'"', b"'") and b"service-unavailable" in answer
    alice.close()


async def nothing_yet(client: RawClient, pattern: bytes) -> bool:
    """`pattern` does not come within half a second (what is awaited already happened)."""
    try:
        await client.read_until(pattern, timeout=0.5)
    except AssertionError:
        return True
    return False


def hold_commits(storage) -> tuple[asyncio.Event, asyncio.Event]:
    """The real SQLite store, whose commits of held messages wait until `release` is set;
    `reached` tells that one is waiting."""
    return hold_call(storage, "hold_offline")


async def delivered_uncommitted(harness, text: str, then: str = ""):
    """alice's message `text` (and `then`) reached bob while its commit is held: bob, alice,
    alice's SM id, and the event that lets the commit go on."""
    bob, _ = await enabled(harness, "bob")
    await bob.send("<presence/>")
    alice, sm_id = await enabled(harness, "alice")
    release, reached = hold_commits(harness.server.storage)
    await alice.send(message("bob", text) + then)
    await bob.read_until(f"<body>{text}</body>")
    await reached.wait()
    return bob, alice, sm_id, release


async def test_a_message_goes_out_before_its_commit_but_the_senders_h_waits_for_it(harness):
    """Design decision 6 without its cost: bob gets alice's message while its commit still
    runs; alice's <a/> (her h passing it) comes only once the commit landed."""
    bob, alice, _, release = await delivered_uncommitted(harness, "early", f"<r xmlns='{SM}'/>")
    assert await stored(harness, "bob") == 0  # not committed, yet delivered
    # alice's <r/> came right behind: an answer would be out by now
    assert await nothing_yet(alice, rb"<a xmlns"), "the sender's h passed what is not durable"
    release.set()
    await alice.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.1.\s*/>")
    assert await stored(harness, "bob") == 1  # durable, bob has not acknowledged it
    alice.close()
    bob.close()


async def test_an_ack_before_the_commit_lands_leaves_no_stored_row(harness):
    """bob acknowledges the message while its commit still runs: once it lands the row goes,
    instead of staying to be delivered again at every login."""
    bob, alice, _, release = await delivered_uncommitted(harness, "acked-early")
    conn = managed(harness, "bob")
    await bob.send(f"<a xmlns='{SM}' h='{conn.sm.sent}'/><r xmlns='{SM}'/>")
    await bob.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=")  # bob's ack was processed
    assert await stored(harness, "bob") == 0
    release.set()
    await alice.send(f"<r xmlns='{SM}'/>")
    await alice.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.1.\s*/>")  # committed by now
    await none_stored(harness, "bob")
    bob.close()
    later = await bound(harness, "bob", "later")
    await later.send("<presence/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    got = await later.read_until(rb"<iq[^>]*id=.p.")
    assert b"acked-early" not in got  # nothing comes again
    alice.close()
    later.close()


async def test_a_message_the_full_store_refuses_is_an_error_to_its_sender(harness):
    """Sent at once, then its commit fails (a real SQLITE_FULL): alice hears
    resource-constraint, and her h passes the message only with that error."""
    bob, _ = await enabled(harness, "bob")
    await bob.send("<presence/>")
    alice, _ = await enabled(harness, "alice")
    storage = harness.server.storage

    def no_more_pages() -> None:  # on the store's own connection
        pages = storage._conn.execute("PRAGMA page_count").fetchone()[0]
        storage._conn.execute(f"PRAGMA max_page_count = {pages}")

    await storage._run(no_more_pages)
    big = "x" * 20_000
    await alice.send(message("bob", big) + f"<r xmlns='{SM}'/>")
    data = await alice.read_until(rb"<a xmlns=.urn:xmpp:sm:3. h=.1.\s*/>")
    assert b"type='error'" in data.replace(b'"', b"'") and b"resource-constraint" in data
    alice.close()
    bob.close()


async def test_a_resumption_confirms_the_senders_messages_only_once_committed(harness):
    """The h in <resumed/> passes what the old stream routed: it waits for their commit."""
    bob, alice, sm_id, release = await delivered_uncommitted(harness, "in-flight")
    alice.writer.transport.abort()
    await wait_for(lambda: managed(harness, "alice").detached)
    again, _ = await authenticated(harness, "alice")
    await again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    assert await nothing_yet(again, rb"<resumed "), "resumed with an h passing what is not durable"
    release.set()
    data = await again.read_until(rb"<resumed [^>]*/>")
    assert re.search(rb"h=.1.", data), data
    assert await stored(harness, "bob") == 1
    again.close()
    bob.close()


async def test_stanzas_a_dropped_stream_never_routed_are_not_in_the_resumed_h(harness):
    """alice's connection drops while her first message of a pipelined pair awaits the store:
    the stream had counted both, but neither was stored, so <resumed/> must not pass them
    (she sends them again) or they would be lost though acknowledged."""
    alice, sm_id = await enabled(harness, "alice")
    storage = harness.server.storage
    release, reached = asyncio.Event(), asyncio.Event()
    store = storage.store_offline

    async def held(*args):
        reached.set()
        await release.wait()
        return await store(*args)

    storage.store_offline = held
    await alice.send(message("bob", "one") + message("bob", "two"))  # bob is offline
    await reached.wait()
    alice.writer.transport.abort()
    await wait_for(lambda: managed(harness, "alice").detached)
    release.set()
    again, _ = await authenticated(harness, "alice")
    await again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    data = await again.read_until(rb"<resumed [^>]*/>")
    h = int(re.search(rb"h=.(\d+).", data).group(1))
    assert h <= await stored(harness, "bob"), (h, data)
    again.close()
