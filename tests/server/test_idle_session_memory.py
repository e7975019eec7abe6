"""What every idle session holds, 10 000 at a time (issue 14: <= 32 KiB per idle TLS session):
the objects kept for each one carry no per-instance dict."""

from __future__ import annotations

import pytest
from vines_server.core.sessions import Session
from vines_server.net.connection import C2SConnection
from vines_server.net.output import OutputQueue
from vines_server.xmpp import sm
from vines_server.xmpp.jid import JID


@pytest.mark.parametrize(
    "make",
    [
        lambda: OutputQueue(1000),
        lambda: sm.Outbound(10, 1000),
        sm.Inbound,
        lambda: Session(JID.parse("a@example.org/r"), link=None),
    ],
    ids=["OutputQueue", "Outbound", "Inbound", "Session"],
)
def test_per_session_objects_have_no_instance_dict(make):
    assert not hasattr(make(), "__dict__")


def test_connections_have_no_instance_dict():
    assert "__dict__" not in dir(C2SConnection) and C2SConnection.__slots__ == ()


async def test_a_tls_connection_holds_no_python_wrapper_around_its_tls_object(tmp_path, pki):
    """TLSSession keeps ssl's C object itself (no ssl.SSLObject with its instance dict and weak
    reference); SNI, the negotiated details and channel binding still come from it."""
    import ssl

    from tests.support.xmpp import DOMAIN, raw_login, running_server

    async with running_server(tmp_path, pki) as h:
        await h.add_user("alice")
        alice = await raw_login(h, "alice")  # SCRAM-SHA-*-PLUS or PLAIN: bindings were read
        (conn,) = h.server.connections
        tls = conn.io.session
        assert not isinstance(tls._obj, ssl.SSLObject) and not hasattr(tls._obj, "__dict__")
        assert conn.info["sni"] == DOMAIN and conn.info["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert tls.channel_bindings()["tls-server-end-point"]
        alice.close()


async def test_sessions_share_the_strings_every_one_of_them_keeps(tmp_path, pki):
    """The negotiated TLS names, the SASL mechanism and the stream header's namespaces are the
    same few strings for thousands of sessions: each keeps a reference, not a copy."""
    from tests.support.xmpp import raw_login, running_server

    async with running_server(tmp_path, pki) as h:
        await h.add_user("alice")
        await h.add_user("bob")
        clients = [await raw_login(h, "alice"), await raw_login(h, "bob")]
        first, second = h.server.connections
        for key in ("tls_version", "cipher", "mechanism"):
            assert first.info[key] == second.info[key] and first.info[key] is second.info[key]
        parsers = [conn.stream._parser for conn in (first, second)]
        assert parsers[0]._root == parsers[1]._root and parsers[0]._root is parsers[1]._root
        namespaces = [dict(p._header_ns) for p in parsers]
        assert namespaces[0] == namespaces[1] and namespaces[0]
        for prefix, uri in namespaces[0].items():
            assert uri is namespaces[1][prefix]
            assert prefix is None or prefix is next(k for k in namespaces[1] if k == prefix)
        for client in clients:
            client.close()
