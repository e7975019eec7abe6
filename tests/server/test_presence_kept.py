"""What a session keeps of its available presence: a plain `<presence/>` is one element shared
by every session that sent one (issue 14: memory of idle sessions), never changed in place."""

from __future__ import annotations

from vines_server.xmpp import ns
from vines_server.xmpp.jid import JID

from tests.server.test_admin_process import wait_for
from tests.server.test_sm import bound
from tests.support.xmpp import DOMAIN

SHOW = ns.q(ns.CLIENT, "show")


async def test_plain_presences_share_one_element_and_a_richer_one_replaces_only_its_own(harness):
    sessions = harness.server.sessions
    bob = await bound(harness, "bob", "one")
    alice = await bound(harness, "alice")
    await bob.send("<presence/>")
    await alice.send("<presence/>")
    bob_one, alice_r = JID.parse(f"bob@{DOMAIN}/one"), JID.parse(f"alice@{DOMAIN}/r")
    await wait_for(lambda: sessions.get(bob_one).available and sessions.get(alice_r).available)
    assert sessions.get(bob_one).presence is sessions.get(alice_r).presence

    await alice.send("<presence><show>away</show></presence>")
    await wait_for(lambda: sessions.get(alice_r).presence.findtext(SHOW) == "away")
    kept = sessions.get(bob_one).presence
    assert len(kept) == 0 and kept.findtext(SHOW) is None and "from" not in kept.attrib

    # bob's next resource gets the presence of his first one, with its own sender
    later = await bound(harness, "bob", "two")
    await later.send("<presence/>")
    got = await later.read_until(rf"<presence [^>]*from=.bob@{DOMAIN}/one.".encode())
    assert b"<show>" not in got
    for client in (bob, alice, later):
        client.close()
