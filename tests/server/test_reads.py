"""Streams read into a buffer of their thread (net/reads.py), not into 256 KiB that asyncio's
selector transport allocates for every recv(): what arrives is handed on whole and in order, a
small read allocates about its own size, and two threads' loops never share a buffer."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import tracemalloc

from vines_server.net.connection import StreamConnection
from vines_server.net.reads import READ_SIZE, SharedBufferReads
from vines_server.net.s2s import OutboundLink


class Collect(SharedBufferReads):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def data_received(self, data: bytes) -> None:
        self.received.put_nowait(data)


async def _accepted() -> tuple[Collect, socket.socket, asyncio.Transport]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_accepted_socket(Collect, ours)
    return protocol, theirs, transport


def test_the_server_streams_read_this_way():
    assert issubclass(StreamConnection, SharedBufferReads)
    assert issubclass(OutboundLink, SharedBufferReads)


async def test_bytes_larger_than_a_read_arrive_whole_and_in_order():
    protocol, theirs, transport = await _accepted()
    payload = os.urandom(5 * READ_SIZE + 17)
    await asyncio.get_running_loop().sock_sendall(theirs, payload)
    chunks: list[bytes] = []
    while sum(map(len, chunks)) < len(payload):
        chunks.append(await protocol.received.get())
    assert b"".join(chunks) == payload
    assert all(type(c) is bytes and len(c) <= READ_SIZE for c in chunks)
    transport.close()
    theirs.close()


async def test_a_small_read_allocates_about_its_size():
    protocol, theirs, transport = await _accepted()
    theirs.send(b"warm")  # the thread's buffer is made at its first read
    assert await protocol.received.get() == b"warm"
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        theirs.send(b"x" * 300)
        data = await protocol.received.get()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert data == b"x" * 300
    assert peak < 32 * 1024  # a recv(256 KiB) per read would be 256 KiB
    transport.close()
    theirs.close()


def test_each_thread_reads_into_a_buffer_of_its_own():
    """A read in one thread's loop between another thread's get_buffer() and its
    buffer_updated() leaves the other's bytes alone."""
    got: list[bytes] = []

    class Keep(SharedBufferReads):
        def data_received(self, data: bytes) -> None:
            got.append(data)

    first = Keep()
    first.get_buffer(-1)[:3] = b"one"

    def elsewhere() -> None:
        other = Keep()
        other.get_buffer(-1)[:3] = b"two"
        other.buffer_updated(3)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    first.buffer_updated(3)
    assert got == [b"two", b"one"]
