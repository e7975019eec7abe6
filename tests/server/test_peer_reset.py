"""A peer that is already gone when the server closes its stream (issue 8.6): the reset is an
ordinary end of a connection, never a traceback, an error line or a failed shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from vines_server.server import Server

from tests.server.test_hostile import connect, serve
from tests.support.c2s import STARTTLS, bind, stream_open
from tests.support.xmpp import DOMAIN, PASSWORD, PKI, server_config

HEADER = stream_open(DOMAIN)


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Until `condition()` holds (it changes on the server's side of the loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends a RST now, before the server reads anything."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def open_socket(port: int, starttls: bool) -> socket.socket:
    """A connection whose TLS handshake the server has begun and the client never continues."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    if starttls:
        await loop.sock_sendall(sock, HEADER.encode() + STARTTLS.encode())
        received = b""
        while b"<proceed" not in received:
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
            assert data, received
            received += data
    return sock


@pytest.mark.parametrize("kind", ["c2s-direct-tls", "c2s-starttls"])
async def test_a_reset_during_shutdown_is_quiet(
    tmp_path: Path, pki: PKI, caplog: pytest.LogCaptureFixture, kind: str
):
    caplog.set_level(logging.DEBUG)
    server = Server(server_config(pki, tmp_path))
    await server.start()
    try:
        port = next(li.port for li in server.listening if li.kind == kind)
        sockets = [await open_socket(port, kind == "c2s-starttls") for _ in range(3)]
        await until(lambda: len(server.connections) == len(sockets), "connections not accepted")
        for sock in sockets:
            reset(sock)
        # No loop iteration between the resets and the close: the server has not read the
        # resets, and a stream in its TLS handshake queues its <system-shutdown/> inside TLS,
        # so the half-close is the first call to meet the vanished peer.
    finally:
        await server.stop()
    assert not server.connections
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


async def test_a_reset_while_the_bind_awaits_storage_leaves_no_session(
    tmp_path: Path, pki: PKI, caplog: pytest.LogCaptureFixture
):
    """The bind registers the session, then records the login: a peer that resets in between
    must not leave a session behind that takes its messages (and a slot of its account)."""
    caplog.set_level(logging.INFO)
    async with serve(tmp_path, pki) as h:
        for attempt in range(3):
            client = await connect(h)
            await client.starttls()
            await client.auth_plain("alice", PASSWORD)
            await client.read_until(rb"<success[^>]*/>")
            await client.open_stream()
            await client.send(bind("b", f"r{attempt}"))  # the reset follows in the same moment
            sock = client.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.writer.transport.abort()  # closes the socket on the next turn: a RST
            await until(lambda: not h.server.connections, "the connection stayed")
            await until(lambda: not list(h.server.sessions), "a session outlived its connection")
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]
