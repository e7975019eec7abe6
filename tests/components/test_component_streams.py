"""slixmpp's ComponentXMPP as a real third-party component against the bundled server: the
handshake, every stream error, conflicts and routing both ways."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from vines_server.xmpp.component import handshake_digest

from tests.components.conftest import (
    SECRET,
    SPARE,
    WORK,
    component_sections,
    connect_component,
)
from tests.support.xmpp import DOMAIN, RawClient, disconnect, running_server, slixmpp_client


async def raw_component(harness, to: str | None = WORK) -> tuple[RawClient, str]:
    raw = await RawClient.connect(harness.port("component"), harness.pki.ca_file)
    to_attr = f" to='{to}'" if to else ""
    await raw.send(
        "<stream:stream xmlns='jabber:component:accept' "
        f"xmlns:stream='http://etherx.jabber.org/streams'{to_attr}>"
    )
    head = await raw.read_until(rb"<stream:stream[^>]*>")
    match = re.search(rb"id='([^']+)'", head)
    assert match, head
    return raw, match[1].decode()


async def handshaken(harness, to: str = WORK, secret: str = SECRET) -> RawClient:
    raw, sid = await raw_component(harness, to)
    await raw.send(f"<handshake>{handshake_digest(sid, secret)}</handshake>")
    await raw.read_until(rb"<handshake/>")
    return raw


async def test_a_component_connects_with_its_secret(harness) -> None:
    component = await connect_component(harness)
    (status,) = [s for s in harness.server.components.statuses() if s.domain == WORK]
    assert status.connected and status.address.startswith("127.0.0.1:")
    await disconnect(component)


async def test_a_wrong_secret_is_not_authorized(harness) -> None:
    raw, sid = await raw_component(harness)
    await raw.send(f"<handshake>{handshake_digest(sid, 'a guess')}</handshake>")
    await raw.expect_stream_error("not-authorized")


async def test_slixmpp_with_a_wrong_secret_never_starts(harness) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(connect_component(harness, secret="a guess"), 3)


@pytest.mark.parametrize(
    ("to", "condition"), [("nope.vines.test", "host-unknown"), (None, "improper-addressing")]
)
async def test_header_errors_on_the_wire(harness, to, condition) -> None:
    raw, _ = await raw_component(harness, to)
    await raw.expect_stream_error(condition)


async def test_a_stanza_before_the_handshake_is_not_authorized(harness) -> None:
    raw, _ = await raw_component(harness)
    await raw.send(f"<message from='{WORK}' to='alice@{DOMAIN}'><body>x</body></message>")
    await raw.expect_stream_error("not-authorized")


async def test_a_second_connection_is_refused_by_default(harness) -> None:
    first = await handshaken(harness)
    second, sid = await raw_component(harness)
    await second.send(f"<handshake>{handshake_digest(sid, SECRET)}</handshake>")
    await second.expect_stream_error("conflict")
    # the first still serves the domain
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    alice.send_message(mto=f"bot@{WORK}", mbody="still you")
    await first.read_until(rb"still you")
    await disconnect(alice)


async def test_kick_old_replaces_the_first_connection(harness) -> None:
    first = await handshaken(harness, SPARE, "spare-secret")
    second = await handshaken(harness, SPARE, "spare-secret")
    await first.expect_stream_error("conflict")
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    alice.send_message(mto=f"bot@{SPARE}", mbody="to the new one")
    await second.read_until(rb"to the new one")
    await disconnect(alice)


async def test_a_stanza_from_another_domain_is_invalid_from(harness) -> None:
    raw = await handshaken(harness)
    await raw.send(f"<message from='admin@{DOMAIN}' to='alice@{DOMAIN}'><body>x</body></message>")
    await raw.expect_stream_error("invalid-from")


async def test_messages_and_iqs_both_ways(harness) -> None:
    component = await connect_component(harness)
    alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
    got: asyncio.Queue = asyncio.Queue()
    component.add_event_handler("message", got.put_nowait)
    alice.send_message(mto=f"bot@{WORK}", mbody="job 1")
    message = await asyncio.wait_for(got.get(), 5)
    assert message["body"] == "job 1" and message["from"] == alice.boundjid

    back: asyncio.Queue = asyncio.Queue()
    alice.add_event_handler("message", back.put_nowait)
    component.send_message(mto=str(alice.boundjid), mfrom=f"bot@{WORK}", mbody="done 1")
    reply = await asyncio.wait_for(back.get(), 5)
    assert reply["body"] == "done 1" and reply["from"] == f"bot@{WORK}"

    # a user pings the component (slixmpp answers), the component pings the server and a user
    await alice.plugin["xep_0199"].ping(WORK, timeout=5)
    await component.plugin["xep_0199"].ping(DOMAIN, ifrom=WORK, timeout=5)
    await component.plugin["xep_0199"].ping(str(alice.boundjid), ifrom=WORK, timeout=5)
    version = await component.plugin["xep_0092"].get_version(DOMAIN, ifrom=WORK, timeout=5)
    assert version["software_version"]["name"]
    statuses = {s.domain: s for s in harness.server.components.statuses()}
    assert statuses[WORK].stanzas_in >= 3 and statuses[WORK].stanzas_out >= 2
    await disconnect(alice, component)


async def test_components_talk_to_each_other(harness) -> None:
    work = await connect_component(harness)
    spare = await connect_component(harness, SPARE, "spare-secret")
    got: asyncio.Queue = asyncio.Queue()
    spare.add_event_handler("message", got.put_nowait)
    work.send_message(mto=f"q@{SPARE}", mfrom=f"w@{WORK}", mbody="between components")
    assert (await asyncio.wait_for(got.get(), 5))["body"] == "between components"
    await disconnect(work, spare)


async def test_while_disconnected_messages_and_iqs_bounce_and_presence_is_dropped(harness) -> None:
    raw = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await raw.login("alice")
    await raw.send(f"<presence to='bot@{WORK}'/>")
    await raw.send(f"<message id='m1' to='bot@{WORK}'><body>anyone?</body></message>")
    err = await raw.read_until(rb"</message>")
    assert b"id='m1'" in err and b"<remote-server-timeout" in err and b"type='wait'" in err
    await raw.send(f"<iq id='i1' type='get' to='{WORK}'><ping xmlns='urn:xmpp:ping'/></iq>")
    err = await raw.read_until(rb"</iq>")
    assert b"id='i1'" in err and b"<remote-server-timeout" in err
    # the presence sent first came back with nothing: the two errors were all
    assert b"presence" not in raw.buffer


async def test_direct_tls_on_the_component_port(tmp_path, pki) -> None:
    sections = component_sections(tmp_path, component_tls=True)
    async with running_server(tmp_path, pki, **sections) as harness:
        await harness.add_user("alice")
        component = await connect_component(harness, kind="component-tls")
        got: asyncio.Queue = asyncio.Queue()
        component.add_event_handler("message", got.put_nowait)
        alice = await slixmpp_client(harness, f"alice@{DOMAIN}")
        alice.send_message(mto=f"bot@{WORK}", mbody="over TLS")
        assert (await asyncio.wait_for(got.get(), 5))["body"] == "over TLS"
        conn = next(c for c in harness.server.connections if c.info.get("component") == WORK)
        assert conn.info["listener"] == "component-tls" and conn.info["tls_version"]
        # plaintext on the TLS port gets nowhere
        raw = await RawClient.connect(harness.port("component-tls"), harness.pki.ca_file)
        await raw.send(f"<stream:stream xmlns='jabber:component:accept' to='{WORK}'>")
        assert await raw.closed_by_server()
        assert b"<stream:stream" not in raw.buffer
        await disconnect(alice, component)


async def test_guessing_the_secret_bans_the_ip_like_failed_logins(tmp_path, pki) -> None:
    sections = component_sections(tmp_path)
    sections["limits"] = {"auth_failures_per_ip": 2, "ban_exempt": []}
    async with running_server(tmp_path, pki, **sections) as harness:
        for _ in range(2):
            raw, sid = await raw_component(harness)
            await raw.send(f"<handshake>{handshake_digest(sid, 'a guess')}</handshake>")
            await raw.expect_stream_error("not-authorized")
        raw = await RawClient.connect(harness.port("component"), harness.pki.ca_file)
        data = await raw.expect_stream_error("policy-violation")
        assert b"retry after" in data  # even the right secret gets nowhere now


async def test_a_component_that_stops_reading_bounces_what_it_never_got(tmp_path, pki) -> None:
    """Its output fills: further messages bounce resource-constraint (wait); when it is closed
    for not reading, the messages still queued for it bounce remote-server-timeout (wait).
    Every message comes back or was written: nothing vanishes."""
    sections = component_sections(tmp_path)
    sections["limits"] = {"output_bytes": 64 * 1024}
    # long enough that alice's next message, however slow a busy machine makes it, meets the
    # full output before the stall deadline closes the component
    sections["deadlines"] = {"output_stall": 5}
    async with running_server(tmp_path, pki, **sections) as harness:
        await harness.add_user("alice")
        deaf = await handshaken(harness)  # never reads again
        alice = await RawClient.connect(harness.port(), harness.pki.ca_file)
        await alice.login("alice")
        body = "x" * 8000
        sent = 0
        while b"resource-constraint" not in alice.buffer:
            assert b"remote-server-timeout" not in alice.buffer, "closed before it refused"
            sent += 1
            await alice.send(f"<message id='m{sent}' to='bot@{WORK}'><body>{body}</body></message>")
            with contextlib.suppress(AssertionError):
                await alice.read_until(rb"(?!x)x", timeout=0.01)  # take what came back
        # the stall deadline closes the component's stream; what it still held comes back
        bounced = await alice.read_until(rb"remote-server-timeout.*?</message>", timeout=15)
        assert b"type='wait'" in bounced
        deaf.close()


async def test_a_component_that_proved_its_secret_is_not_held_to_the_read_rate(
    tmp_path, pki, monkeypatch
) -> None:
    """[limits] read_rate rations peers; a component's traffic is the service's own. The same
    384 KiB that pauses a client (tests/server/test_hostile_more.py, T-18) flows unpaused."""
    from vines_server.net import connection

    rate_pauses: list[object] = []
    original = connection.StreamConnection._pause

    def recording_pause(self, reason: str) -> None:
        if reason == "rate":
            rate_pauses.append(self)
        original(self, reason)

    monkeypatch.setattr(connection.StreamConnection, "_pause", recording_pause)
    sections = component_sections(tmp_path)
    sections["limits"] = {"read_rate": 64 * 1024, "read_burst": 16 * 1024}
    async with running_server(tmp_path, pki, **sections) as h:
        await h.add_user("alice")
        alice = await slixmpp_client(h, f"alice@{DOMAIN}")
        got: list[str] = []
        done = asyncio.Event()

        def on_message(msg) -> None:
            got.append(msg["id"])
            if len(got) == 24:
                done.set()

        alice.add_event_handler("message", on_message)
        raw = await handshaken(h)
        body = "x" * 16 * 1024
        for i in range(24):
            await raw.send(
                f"<message from='bot@{WORK}' to='alice@{DOMAIN}' id='c{i}'>"
                f"<body>{body}</body></message>"
            )
        await asyncio.wait_for(done.wait(), 30)
        assert got == [f"c{i}" for i in range(24)]
        assert rate_pauses == []
        await disconnect(alice)


async def test_a_component_that_keeps_talking_outlives_the_idle_deadline(tmp_path, pki) -> None:
    """Its reads are not metered, but they are still activity: a busy component must not be
    closed [deadlines] idle after its handshake."""
    sections = component_sections(tmp_path)
    sections["deadlines"] = {"idle": 0.5}
    async with running_server(tmp_path, pki, **sections) as h:
        raw = await handshaken(h)
        for i in range(8):  # 1.2 s in all, more than twice the deadline, never 0.5 s silent
            await asyncio.sleep(0.15)
            await raw.send(
                f"<iq type='get' id='p{i}' from='{WORK}' to='{DOMAIN}'>"
                "<ping xmlns='urn:xmpp:ping'/></iq>"
            )
            await raw.read_until(rf"<iq[^>]*id='p{i}'")
        assert b"connection-timeout" not in raw.buffer
        await raw.read_until(rb"<connection-timeout ")  # silent now: closed
