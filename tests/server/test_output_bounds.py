"""Output to a client that does not read is bounded (issue 8 section 3, design decision 12).

A raw TLS client with a tiny receive buffer stops reading; slixmpp clients send to it. Its
messages go to offline storage (and come out once it reads again, or at its next login), iqs to
it bounce `resource-constraint`, its own pipelined requests wait, and a connection that stays
full past `[deadlines] output_stall` is closed with `policy-violation`.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from slixmpp.exceptions import IqError
from vines_server.config import Limits
from vines_server.net.connection import WRITE_HIGH, C2SConnection
from vines_server.storage import SQLiteStorage
from vines_server.storage.base import RosterItem
from vines_server.xmpp.jid import JID
from vines_server.xmpp.sasl.credentials import derive_all

from tests.server.test_admin_process import Live, wait_for, write_config
from tests.support.xmpp import (
    DOMAIN,
    PASSWORD,
    TEST_ITERATIONS,
    Harness,
    RawClient,
    disconnect,
    running_server,
    slixmpp_client,
)

OUTPUT_BYTES = 32 * 1024
BODY = 20_000  # bytes of each message body
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


async def reading_client(harness: Harness, user: str, rcvbuf: int | None = None):
    """A logged-in, available raw client, its full JID and what it received once available
    (offline messages). With `rcvbuf`, on a socket with that receive buffer (set before
    connecting, so the window it offers stays that small)."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", harness.port()))
    reader, writer = await asyncio.open_connection(sock=sock)
    client = RawClient(reader, writer, harness.pki.ca_file)
    bound = await client.login(user)
    full = JID.parse(re.search(rb"<jid>([^<]+)</jid>", bound).group(1).decode())
    # available; the ping's answer shows the presence was handled before it
    await client.send(
        f"<presence/><iq type='get' id='av' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    received = await client.read_until(rb"<iq[^>]*id='av'[^>]*/>")
    return client, full, received


async def stalled_client(harness: Harness, user: str):
    client, full, _ = await reading_client(harness, user, rcvbuf=4096)
    client.writer.transport.pause_reading()  # from now on it reads nothing
    return client, full


def read_again(client: RawClient) -> None:
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # and quickly
    client.writer.transport.resume_reading()


def kernel_send_buffer_max() -> int:
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def connection(harness: Harness, full: JID) -> C2SConnection:
    return harness.server.sessions.get(full).link


async def fill(harness: Harness, bob, full: JID) -> tuple[int, int]:
    """Bob sends big messages to `full` until some are kept offline (the kernel's socket
    buffers take megabytes first); returns (sent, kept)."""
    sent = kept = 0
    while not kept:
        assert sent < 2000, "the output never filled"
        for _ in range(20):
            bob.send_message(mto=str(full), mbody=f"m{sent:04d} " + "x" * BODY, mtype="chat")
            sent += 1
        await bob.plugin["xep_0199"].ping(jid=DOMAIN, timeout=30)  # all before it is routed
        kept = await kept_offline(harness, str(full.bare))
    return sent, kept


async def kept_offline(harness: Harness, bare: str) -> int:
    """Stored messages waiting for the client to read again: not those in its output queue
    (every message is stored until written, design decision 6)."""
    pending = harness.server.router.pending
    return sum(not pending.in_flight(m.id) for m in await harness.server.storage.list_offline(bare))


async def none_stored(harness: Harness, bare: str) -> None:
    """Every message was written, and deleted from the store (deletions are grouped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await harness.server.storage.count_offline(bare):
        assert loop.time() < deadline, "delivered messages stayed in the store"
        await asyncio.sleep(0.02)


def bodies(data: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"<body>(m\d{4}) ", data)]


def numbered(count: int) -> list[str]:
    return [f"m{i:04d}" for i in range(count)]


@asynccontextmanager
async def stalled_and_sender(tmp_path, pki, **deadlines: float):
    """A server with small output limits, alice's stalled connection and bob (slixmpp), who
    share their presence."""
    sections = {"limits": {"output_bytes": OUTPUT_BYTES}, "deadlines": deadlines}
    async with running_server(tmp_path, pki, **sections) as h:
        await h.add_user("alice")
        await h.add_user("bob")
        for user, contact in ((ALICE, BOB), (BOB, ALICE)):
            await h.server.storage.put_roster_item(user, RosterItem(contact, None, "both"))
        alice, full = await stalled_client(h, "alice")
        bob = await slixmpp_client(h, BOB)
        try:
            yield h, alice, full, bob
        finally:
            alice.close()
            await disconnect(bob)


def assert_bounded(conn: C2SConnection, largest_stanza: int) -> None:
    assert conn.output_backlog <= OUTPUT_BYTES + largest_stanza
    assert conn.transport.get_write_buffer_size() <= WRITE_HIGH + largest_stanza


async def test_messages_to_a_stalled_client_wait_offline_until_it_reads(tmp_path, pki):
    async with stalled_and_sender(tmp_path, pki) as (h, alice, full, bob):
        sent, kept = await fill(h, bob, full)
        conn = connection(h, full)
        assert conn.output_full
        assert_bounded(conn, BODY + 1000)

        read_again(alice)
        last = f"m{sent - 1:04d}"
        data = await alice.read_until(rf"<body>{last} .*?</message>", timeout=30)
        # all of them, once each and in order: those kept offline follow when it drained
        assert bodies(data) == numbered(sent)
        assert data.count(b"Offline storage</delay>") == kept
        await wait_for(lambda: not conn.output_full)
        await none_stored(h, ALICE)


async def test_iq_to_a_stalled_client_bounces_resource_constraint(tmp_path, pki):
    async with stalled_and_sender(tmp_path, pki) as (h, _, full, bob):
        await fill(h, bob, full)
        with pytest.raises(IqError) as err:
            await bob.plugin["xep_0092"].get_version(str(full), timeout=10)
        assert err.value.condition == "resource-constraint"
        assert err.value.etype == "wait"


async def test_presence_to_a_stalled_client_is_coalesced_to_the_latest(tmp_path, pki):
    async with stalled_and_sender(tmp_path, pki) as (h, alice, full, bob):
        await fill(h, bob, full)
        for i in range(50):
            bob.send_presence(pstatus=f"s{i}")
        await bob.plugin["xep_0199"].ping(jid=DOMAIN, timeout=30)
        assert connection(h, full).output_full  # all 50 came while it was full

        read_again(alice)
        data = await alice.read_until(rb"<status>s49</status>", timeout=30)
        assert re.findall(rb"<status>(s\d+)</status>", data) == [b"s49"]


async def test_a_client_that_stays_full_is_closed_and_gets_its_messages_at_next_login(
    tmp_path, pki
):
    async with stalled_and_sender(tmp_path, pki, output_stall=1.0) as (h, alice, full, bob):
        conn = connection(h, full)
        sent, _ = await fill(h, bob, full)
        await wait_for(lambda: conn.closing)  # the stall deadline passed
        read_again(alice)
        first = await alice.expect_stream_error("policy-violation", timeout=10)
        # its queue was not lost: whatever it did not read before the close is kept
        await wait_for(lambda: h.server.sessions.get(full) is None)

        again, _, second = await reading_client(h, "alice")
        again.close()
        assert sorted(set(bodies(first) + bodies(second))) == numbered(sent)
        await none_stored(h, ALICE)


async def test_pipelined_gets_of_a_large_vcard_stop_at_the_source(tmp_path, pki):
    async with running_server(tmp_path, pki, limits={"output_bytes": OUTPUT_BYTES}) as h:
        await h.add_user("alice")
        alice, full, _ = await reading_client(h, "alice", rcvbuf=4096)
        try:
            card = "y" * 60_000
            await alice.send(
                f"<iq type='set' id='set'><vCard xmlns='vcard-temp'><DESC>{card}</DESC>"
                "</vCard></iq>"
            )
            await alice.read_until(rb"<iq[^>]*id='set'[^>]*/>")
            alice.writer.transport.pause_reading()
            conn = connection(h, full)
            routed = h.server.router.stanzas_in
            # more answers than the kernel's socket buffers can take, so the server's fill
            gets = 2 * kernel_send_buffer_max() // len(card) + 100
            await alice.send(
                "".join(
                    f"<iq type='get' id='g{i}'><vCard xmlns='vcard-temp'/></iq>"
                    for i in range(gets)
                )
            )
            await wait_for(lambda: conn.output_full)
            # Stopped at the source: its input waits, so the answers in memory stay bounded.
            assert h.server.router.stanzas_in - routed < gets
            assert_bounded(conn, len(card) + 1000)

            read_again(alice)  # it reads again: every answer comes
            data = await alice.read_until(rf"id='g{gets - 1}'.*?</iq>", timeout=60)
            assert re.findall(rb"<iq[^>]*id='(g\d+)'", data) == [
                f"g{i}".encode() for i in range(gets)
            ]
        finally:
            alice.close()


def vm_rss(pid: int) -> int:
    """Resident memory of process `pid`, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024


async def test_memory_per_stalled_client_is_bounded_by_the_limits(tmp_path, pki):
    """50 MB pushed at a client that does not read, in a server process of its own: the
    server's RSS grows by what its limits allow (and allocator slack), not by what was pushed."""
    storage = SQLiteStorage(tmp_path / "vines.sqlite")
    await storage.open()
    for user in (ALICE, BOB):
        await storage.create_account(user, derive_all(PASSWORD, TEST_ITERATIONS))
    await storage.close()
    config = write_config(tmp_path, pki)
    # bob pushes 50 MB as fast as he can: his own read rate is not what this test is about
    config.write_text(config.read_text() + f"read_rate = {2**30}\n")  # [limits] comes last
    state_file = tmp_path / "vines.state.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vines_server", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for(state_file.exists)
        live = Live(pki, state_file)
        alice, full = await stalled_client(live, "alice")
        bob = await slixmpp_client(live, BOB)
        before = vm_rss(proc.pid)
        body = "x" * 200_000
        for _ in range(5):  # 5 x 50 x 200 KB
            for _ in range(50):
                bob.send_message(mto=str(full), mbody=body, mtype="chat")
            await bob.plugin["xep_0199"].ping(jid=DOMAIN, timeout=60)  # all of it was routed
        growth = vm_rss(proc.pid) - before
        limits = Limits()
        bound = 4 * (limits.output_bytes + WRITE_HIGH + limits.stanza_size) + 16 * 2**20
        assert growth < bound, f"RSS grew by {growth / 2**20:.1f} MiB, bound {bound / 2**20:.1f}"
        alice.close()
        await disconnect(bob)
    finally:
        proc.terminate()
        await proc.wait()
