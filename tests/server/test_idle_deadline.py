"""[deadlines] idle over real TLS: a stream silent that long is closed with
<connection-timeout/>, one that keeps talking is not. One sweep keeps the deadline of every
connection (server/net/idle.py), so an idle, hibernated session holds no timer of its own
(issue 14: memory per idle session)."""

from __future__ import annotations

import asyncio

from tests.support.xmpp import DOMAIN, raw_login, running_server

PING = f"<iq type='get' id='p{{}}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"


async def test_a_silent_stream_is_closed_and_holds_no_timer_meanwhile(tmp_path, pki):
    async with running_server(tmp_path, pki, deadlines={"idle": 1.5, "hibernate": 0.1}) as h:
        await h.add_user("alice")
        alice = await raw_login(h, "alice")
        (conn,) = h.server.connections
        await asyncio.sleep(0.6)  # past the hibernate deadline, well before the idle one
        assert conn.stream._parser._expat is None  # hibernated
        assert conn._timers == {} and not conn.closing
        data = await alice.read_until(rb"</stream:stream>")
        assert b"<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in data
        assert conn.closing
        alice.close()


async def test_a_stream_that_keeps_talking_outlives_the_deadline(tmp_path, pki):
    async with running_server(tmp_path, pki, deadlines={"idle": 0.5}) as h:
        await h.add_user("alice")
        alice = await raw_login(h, "alice")
        (conn,) = h.server.connections
        for i in range(8):  # 1.2 s in all, more than twice the deadline, never 0.5 s silent
            await asyncio.sleep(0.15)
            await alice.send(PING.format(i))
            await alice.read_until(rf"<iq[^>]*id='p{i}'")
        assert not conn.closing
        data = await alice.read_until(rb"</stream:stream>")  # silent now: closed
        assert b"<connection-timeout " in data
        alice.close()


async def test_the_sweep_runs_only_while_there_are_connections(tmp_path, pki):
    async with running_server(tmp_path, pki, deadlines={"idle": 0.3}) as h:
        await h.add_user("alice")
        sweep = h.server.idle_sweep
        assert sweep._handle is None  # a server with no connection has nothing to sweep
        alice = await raw_login(h, "alice")
        assert sweep._handle is not None
        await alice.read_until(rb"<connection-timeout ")
        alice.close()
        while h.server.connections:  # closed: the lingering close ends at the client's FIN
            await asyncio.sleep(0.05)
        await asyncio.sleep(sweep.period * 2)
        assert sweep._handle is None
