"""Modules see a narrow API: what it hands out is typed data and services (storage, config,
sessions, features), never the server, the router, the module host or a connection."""

from __future__ import annotations

from vines_server.core.api import ModuleHost
from vines_server.core.routing import Router
from vines_server.net.connection import StreamConnection
from vines_server.server import Server

from tests.routing.conftest import World

FORBIDDEN = (Server, Router, ModuleHost, StreamConnection)


async def test_the_module_api_hands_out_no_server_router_or_transport(world: World) -> None:
    api = world.server.host.api("probe")
    world.online("alice", "desk")
    handed = {}
    for name in dir(api):
        if name.startswith("_"):
            continue
        value = getattr(api, name)
        handed[name] = value
        if name == "operator":  # its own members too
            handed |= {f"operator.{n}": getattr(value, n) for n in dir(value) if n[0] != "_"}
    leaks = {name for name, value in handed.items() if isinstance(value, FORBIDDEN)}
    assert leaks == set()
    # the session registry is there, but a session's link is the only way to a transport:
    # modules deliver through the API, which respects its congestion
    assert not any(isinstance(v, StreamConnection) for v in vars(api).values())
