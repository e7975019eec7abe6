"""The probes read a peer's stream with the server's own parser (restricted XML, limits): a
hostile or broken peer ends the probe with a precise reason, never a hang or a traceback."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from vinesctl.probes.stream import open_stream

HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='x' from='example.test' version='1.0'>"
)


@contextmanager
def peer(answer: str) -> Iterator[int]:
    """A TCP peer on 127.0.0.1 that reads the stream header, sends `answer` and keeps the
    connection open until the probe closes it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(answer.encode())
            while conn.recv(4096):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(5)


def probe(port: int):
    return open_stream("127.0.0.1", port, "example.test", ssl.create_default_context(), timeout=5)


def test_a_dtd_from_the_peer_is_restricted_xml() -> None:
    with peer("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" + HEADER[21:]) as port:
        hs = probe(port)
    assert hs.stage == "stream" and "restricted-xml" in hs.error


def test_features_are_read_and_a_refused_starttls_named() -> None:
    features = (
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
        "</starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    )
    with peer(HEADER + features) as port:
        hs = probe(port)
    assert hs.starttls_offered and hs.starttls_required
    assert hs.sasl_mechanisms == ["PLAIN"]
    assert hs.features == [
        "urn:ietf:params:xml:ns:xmpp-tls starttls",
        "urn:ietf:params:xml:ns:xmpp-sasl mechanisms",
    ]
    assert hs.stage == "starttls" and hs.error == "STARTTLS refused (<failure>)"


def test_a_stream_error_is_named() -> None:
    error = (
        "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        "</stream:error></stream:stream>"
    )
    with peer(HEADER + error) as port:
        hs = probe(port)
    assert hs.error == "stream error: host-unknown"
