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
