"""Routing rows for the component destination itself (core/components.py): a configured
component that is not connected answers messages and iqs `remote-server-timeout` (wait) and
drops presence; connected, it gets every stanza to its domain or a JID on it, counted."""

from __future__ import annotations

import pytest
from vines_server.config import ComponentConfig
from vines_server.core.components import ComponentRoute
from vines_server.xmpp import ns

from tests.routing.conftest import Link, World
from tests.routing.test_rules import build, iq, message, observe, populated, presence

AWAY = "away.vines.test"
RST = "remote-server-timeout"

ROWS = [
    ("message to a disconnected component", message(AWAY), {f"alice<-message/error/{RST}"}),
    ("message to a JID on it", message(f"q@{AWAY}/r"), {f"alice<-message/error/{RST}"}),
    ("iq get to it", iq(AWAY, payload=ns.DISCO_INFO), {f"alice<-iq/error/{RST}"}),
    ("iq set to a JID on it", iq(f"q@{AWAY}", "set", "urn:x"), {f"alice<-iq/error/{RST}"}),
    ("presence to it: dropped", presence(AWAY), set()),
    ("subscription request to it: dropped", presence(f"q@{AWAY}", "subscribe"), set()),
    ("error to it: silence", message(AWAY, "error"), set()),
    ("iq result to it: silence", iq(AWAY, "result", None), set()),
]


def away_route(world: World) -> ComponentRoute:
    route = ComponentRoute(ComponentConfig(AWAY, "secret", "Away"), world.server.router.bounce)
    world.server.router.components[AWAY] = route
    return route


@pytest.mark.parametrize(("case", "stanza", "expected"), ROWS, ids=[r[0] for r in ROWS])
async def test_disconnected_component(world: World, case, stanza, expected) -> None:
    await populated(world)
    away_route(world)
    await world.route(build(*stanza, sender="alice@vines.test/desk"), sender="alice")
    seen = {f"{n}<-{observe(s)}" for n, link in world.links.items() for s in link.received}
    assert seen == expected


async def test_the_wait_type_says_retry_later(world: World) -> None:
    await populated(world)
    away_route(world)
    await world.route(build(*message(AWAY), sender="alice@vines.test/desk"), sender="alice")
    (error,) = world.links["alice"].received
    assert error.find(ns.q(ns.CLIENT, "error")).get("type") == "wait"


class ComponentLink(Link):
    peer = "127.0.0.1:5347"
    closing = False


async def test_connected_component_gets_what_is_addressed_to_it(world: World) -> None:
    await populated(world)
    route = away_route(world)
    route.link = ComponentLink()
    for stanza in (message(AWAY), presence(f"q@{AWAY}"), iq(f"q@{AWAY}/r", payload="urn:x")):
        await world.route(build(*stanza, sender="alice@vines.test/desk"), sender="alice")
    assert [observe(s) for s in route.link.received] == [
        "message/chat",
        "presence/available",
        "iq/get",
    ]
    assert route.stanzas_out == 3
    assert world.links["alice"].received == []


async def test_a_closing_component_is_as_good_as_gone(world: World) -> None:
    await populated(world)
    route = away_route(world)
    route.link = ComponentLink()
    route.link.closing = True
    await world.route(build(*message(AWAY), sender="alice@vines.test/desk"), sender="alice")
    assert route.link.received == []
    assert [observe(s) for s in world.links["alice"].received] == [f"message/error/{RST}"]


async def test_a_component_that_does_not_read_gets_no_more_than_its_queue(world: World) -> None:
    await populated(world)
    route = away_route(world)
    route.link = ComponentLink()
    route.link.full = True
    for stanza in (message(AWAY), iq(f"q@{AWAY}", payload="urn:x"), presence(AWAY)):
        await world.route(build(*stanza, sender="alice@vines.test/desk"), sender="alice")
    assert [observe(s) for s in route.link.received] == ["presence/available"]
    assert [observe(s) for s in world.links["alice"].received] == [
        "message/error/resource-constraint",
        "iq/error/resource-constraint",
    ]
