"""The event bus: priorities, a handler that claims an event stops the chain, stanza dispatch
lets a fault reach the router while notifications log it and go on; and a module claims a
stanza before the default handler without touching the router."""

from __future__ import annotations

import pytest
from vines_server.core.hooks import Hooks

from tests.routing.conftest import World
from tests.routing.test_rules import build, observations, populated


async def test_higher_priority_runs_first_and_a_claim_stops_the_chain() -> None:
    hooks, seen = Hooks(), []
    hooks.on("e", lambda: seen.append("low"), priority=-5)
    hooks.on("e", lambda: seen.append("default"))

    async def claims() -> bool:
        seen.append("high")
        return True

    hooks.on("e", claims, priority=10)
    assert await hooks.dispatch("e") is True
    assert seen == ["high"]
    seen.clear()
    assert await hooks.fire("e") is True and seen == ["high"]


async def test_dispatch_raises_where_fire_logs_and_goes_on() -> None:
    hooks, seen = Hooks(), []

    def broken() -> None:
        raise RuntimeError("broken")

    hooks.on("e", broken, priority=1)
    hooks.on("e", lambda: seen.append("after"))
    assert await hooks.fire("e") is False and seen == ["after"]
    with pytest.raises(RuntimeError):
        await hooks.dispatch("e")


def test_emit_runs_every_synchronous_handler_now() -> None:
    hooks, seen = Hooks(), []
    hooks.on("e", lambda x: seen.append(x))
    hooks.on("e", lambda x: seen.append(x * 2))
    hooks.emit("e", 1)  # no await: observers see the change in the same step
    assert seen == [1, 2]


async def test_a_module_claims_messages_before_delivery_to_users(world: World) -> None:
    """What carbons or an archive do: hook `message/account` above the message module."""
    await populated(world)
    api = world.server.host.api("archive")
    archived = []

    def archive(stanza, to, origin) -> bool:
        archived.append((stanza.get("from"), str(to)))
        return stanza.findtext("{jabber:client}body") == "private"  # claims only these

    api.on("message/account", archive, priority=10)
    await world.route(build("message", "chat", "bob@vines.test", None, "alice@vines.test/desk"))
    assert await observations(world) == {"bob<-message/chat"}
    world.links["bob"].received.clear()
    private = build("message", "chat", "bob@vines.test", None, "alice@vines.test/desk")
    private.find("{jabber:client}body").text = "private"
    await world.route(private)
    assert await observations(world) == set()  # claimed: the message module never saw it
    assert archived == [("alice@vines.test/desk", "bob@vines.test")] * 2
