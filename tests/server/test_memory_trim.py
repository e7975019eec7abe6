"""Freed heap goes back to the system after connections go quiet (server/memory.py): requests
coalesce into one trim at a time, and a real connection closing asks for one."""

from __future__ import annotations

import asyncio
import sys

import pytest
from vines_server import memory

from tests.support.xmpp import RawClient

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(memory._TRIM is None, reason="no glibc malloc_trim here"),
]


async def test_requests_coalesce_into_one_trim_per_interval() -> None:
    trimmer = memory.Trimmer(delay=0, interval=3600)
    trimmer.done = asyncio.Event()
    for _ in range(50):  # a burst of closes asks 50 times
        trimmer.request()
    await asyncio.wait_for(trimmer.done.wait(), 10)
    assert trimmer.trims == 1
    trimmer.done.clear()
    trimmer.request()  # within the interval: scheduled for its end, not run now
    await asyncio.sleep(0)
    assert trimmer.trims == 1 and trimmer._handle is not None
    trimmer.cancel()
    assert trimmer._handle is None


def test_trim_runs_on_glibc() -> None:
    assert sys.platform != "linux" or memory.trim() is True


async def test_a_closed_connection_asks_for_a_trim(harness) -> None:
    trimmer = harness.server.trimmer
    trimmer.cancel()  # the one the start asked for
    trimmer.delay, trimmer.interval = 0, 0
    client = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await client.login("alice")
    trimmer.done = asyncio.Event()
    before = trimmer.trims
    client.close()  # the client goes away: connection_lost on the server asks for a trim
    await asyncio.wait_for(trimmer.done.wait(), 10)
    assert trimmer.trims > before
