"""A closed connection gives back its XML parser at once. The connection, its session and its
stream refer to one another, so their Python shells wait for the collector's next full pass
(which, with thousands of long-lived sessions, may be far off); Expat (about 13 KiB each, its
handlers bound to the parser: a cycle of its own) and the TLS objects must not wait with them."""

from __future__ import annotations

import asyncio
import gc
import pyexpat

import pytest

from tests.support.xmpp import raw_login

pytestmark = pytest.mark.timeout(30)


def parsers() -> int:
    return sum(isinstance(o, pyexpat.XMLParserType) for o in gc.get_objects())


def tls_objects() -> int:
    """ssl's C TLS objects alive, ours and the test clients' (RawClient uses TLSSession too)."""
    return sum(type(o).__name__ == "_SSLSocket" for o in gc.get_objects())


async def test_a_closed_connections_parser_is_freed_without_the_collector(harness) -> None:
    gc.collect()
    gc.disable()  # what is freed below is freed by reference counting alone
    try:
        before, tls_before = parsers(), tls_objects()
        clients = [await raw_login(harness, "alice") for _ in range(5)]
        assert parsers() >= before + 5  # each bound stream parses with Expat
        assert tls_objects() == tls_before + 10  # both ends of five connections
        for client in clients:
            client.close()
        async with asyncio.timeout(10):
            while harness.server.connections:
                await asyncio.sleep(0.01)
        assert parsers() == before
        assert tls_objects() == tls_before + 5  # the clients', still referenced here
    finally:
        gc.enable()
