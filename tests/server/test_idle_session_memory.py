"""What every idle session holds, 10 000 at a time (issue 14: <= 32 KiB per idle TLS session):
the objects kept for each one carry no per-instance dict."""

from __future__ import annotations

import pytest
from vines_server.net.connection import C2SConnection
from vines_server.net.output import OutputQueue
from vines_server.xmpp import sm


@pytest.mark.parametrize(
    "make",
    [lambda: OutputQueue(1000), lambda: sm.Outbound(10, 1000), sm.Inbound],
    ids=["OutputQueue", "Outbound", "Inbound"],
)
def test_per_session_objects_have_no_instance_dict(make):
    assert not hasattr(make(), "__dict__")


def test_connections_have_no_instance_dict():
    assert "__dict__" not in dir(C2SConnection) and C2SConnection.__slots__ == ()
