"""Offline delivery survives a crash (design decision 6): a message leaves the store only once
it is in the kernel's socket buffer. The real main loop (`python -m vines_server`) is killed
with SIGKILL while it delivers 300 stored messages to a client that reads slowly; the client
reads what the kernel still sends after the kill, and the next login gets every other one."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from vines_server.storage import SQLiteStorage

from tests.server.test_admin_process import Live, create_accounts, wait_for, write_config
from tests.support.xmpp import DOMAIN, PASSWORD, RawClient

BOB = f"bob@{DOMAIN}"
COUNT = 300
BODY = "x" * 1000  # 300 kB in all: far more than the slow client's buffers hold
MESSAGE_ID = re.compile(rb"<message[^>]*\sid=[\"']m(\d+)[\"']")


async def store_messages(tmp: Path) -> None:
    storage = SQLiteStorage(tmp / "vines.sqlite")
    await storage.open()
    for i in range(COUNT):
        xml = (
            f"<message xmlns='jabber:client' from='alice@{DOMAIN}/a' to='{BOB}' id='m{i}' "
            f"type='chat'><body>{BODY}</body></message>"
        )
        await storage.store_offline(BOB, xml, datetime.now(UTC))
    await storage.close()


async def count_stored(tmp: Path) -> int:
    storage = SQLiteStorage(tmp / "vines.sqlite")
    await storage.open()
    try:
        return await storage.count_offline(BOB)
    finally:
        await storage.close()


async def start(config: Path, tmp: Path) -> asyncio.subprocess.Process:
    state_file = tmp / "vines.state.json"
    state_file.unlink(missing_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vines_server", "--config", str(config),
        "--log-file", str(tmp / "vines.log"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await wait_for(state_file.exists)
    return proc


async def slow_client(live: Live) -> RawClient:
    """A client with small buffers that reads only when the test says so."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", live.port()))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    client = RawClient(reader, writer, live.pki.ca_file)
    await client.login("bob", PASSWORD)
    await client.send("<presence/>")
    return client


def ids(data: bytes) -> set[int]:
    return {int(m.group(1)) for m in MESSAGE_ID.finditer(data)}


async def test_sigkill_during_offline_delivery_loses_nothing_undelivered(tmp_path, pki):
    await create_accounts(tmp_path, PASSWORD, BOB)
    await store_messages(tmp_path)
    config = write_config(tmp_path, pki)
    live = Live(pki, tmp_path / "vines.state.json")

    proc = await start(config, tmp_path)
    try:
        first = await slow_client(live)
        got = await first.read_until(rb"</message>", timeout=15)
    finally:
        proc.kill()  # SIGKILL: no shutdown, no flush
        await proc.wait()
    await first.closed_by_server(timeout=10)  # what the kernel had: sent after the death
    received = ids(got + first.buffer)
    first.close()
    assert 0 < len(received) < COUNT, "the kill came after the whole delivery"

    proc = await start(config, tmp_path)
    try:
        second = await slow_client(live)
        again = b""
        with suppress(AssertionError):  # read_until's "not received": nothing more comes
            while ids(again) | received != set(range(COUNT)):
                again += await second.read_until(rb"</message>", timeout=5)
        lost = set(range(COUNT)) - received - ids(again)
        assert not lost, f"{len(lost)} of {COUNT} messages lost"
        # the store empties once the second delivery is written
        await second.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        await second.read_until(rb"<iq[^>]*id=[\"']p[\"']")
        second.close()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert await count_stored(tmp_path) == 0
