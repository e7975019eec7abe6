"""XEP-0198 with slixmpp's own plugin (xep_0198) as a real third-party client: it enables
stream management with resumption, acknowledges what the server asks for, and after its
connection is cut (the socket aborted, no closing tag) resumes the session: every message sent
to it meanwhile arrives, none twice."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.xmpp import DOMAIN, disconnect, slixmpp_client

BOB = f"bob@{DOMAIN}"


async def test_slixmpp_resumes_after_a_dropped_connection_nothing_lost_nothing_twice(harness):
    bob = await slixmpp_client(harness, BOB, plugins=("xep_0198",))
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    loop = asyncio.get_running_loop()
    got: list[str] = []
    enough: dict[int, asyncio.Future[None]] = {}

    def on_message(msg: Any) -> None:
        got.append(msg["body"])
        waiter = enough.get(len(got))
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def received(count: int) -> asyncio.Future[None]:
        enough[count] = loop.create_future()
        if len(got) >= count:
            enough[count].set_result(None)
        return enough[count]

    bob.add_event_handler("message", on_message)
    sm = bob.plugin["xep_0198"]
    assert sm.sm_id, "stream management was not enabled with resumption"

    for i in range(10):
        alice.send_message(mto=f"{BOB}/{bob.boundjid.resource}", mbody=f"m{i}", mtype="chat")
    await asyncio.wait_for(received(10), 10)
    assert sm.last_ack >= 0  # acks went both ways (slixmpp asks every 5 stanzas)

    dropped = loop.create_future()
    bob.add_event_handler("disconnected", lambda _e: dropped.done() or dropped.set_result(None))
    bob.transport.abort()  # the connection drops; the server keeps the session detached
    await asyncio.wait_for(dropped, 10)
    for i in range(10, 15):  # sent while bob is away: kept in its session's queue
        alice.send_message(mto=f"{BOB}/{bob.boundjid.resource}", mbody=f"m{i}", mtype="chat")

    resumed = loop.create_future()
    bob.add_event_handler("session_resumed", lambda _e: resumed.done() or resumed.set_result(None))
    bob.connect(host="127.0.0.1", port=harness.port())
    await asyncio.wait_for(resumed, 15)
    await asyncio.wait_for(received(15), 10)
    # a round trip after the last message: anything sent twice would have arrived by now
    await bob.plugin["xep_0199"].ping(jid=DOMAIN, timeout=5)
    assert got == [f"m{i}" for i in range(15)]
    await disconnect(alice, bob)
