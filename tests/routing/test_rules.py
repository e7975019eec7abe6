"""RFC 6120 section 10 and RFC 6121 section 8 as a table: one stanza from alice (online at
alice@vines.test/desk) x an addressee x its state, and everything that came out.

The world: bob is online (bob/phone, available, priority 0), carol has an account and no
session, ghost has no account; vines.test is the hosted domain (its modules answer), the
component work.vines.test is connected, remote.example is not allowlisted (closed federation).

An observation is `who<-kind/type[/condition]` for a stanza a session, the component or the
remote seam received, and `offline:local` for a message kept in offline storage. The expected
set is exact: anything extra (a stanza that should have been silence) fails too.
"""

from __future__ import annotations

import pytest
from vines_server.storage.base import RosterItem
from vines_server.xmpp import ns
from vines_server.xmpp.stanza import make

from tests.routing.conftest import COMPONENT, REMOTE, World

D = "vines.test"
BOB, BOB_FULL, BOB_GONE = f"bob@{D}", f"bob@{D}/phone", f"bob@{D}/gone"
CAROL, CAROL_FULL = f"carol@{D}", f"carol@{D}/laptop"
GHOST, GHOST_FULL = f"ghost@{D}", f"ghost@{D}/x"
COMP_USER = f"queue@{COMPONENT}/worker"
FAR = f"someone@{REMOTE}"


def message(to: str, mtype: str = "chat") -> tuple:
    return ("message", mtype, to, None)


def presence(to: str, ptype: str | None = None) -> tuple:
    return ("presence", ptype, to, None)


def iq(to: str, itype: str = "get", payload: str | None = ns.VCARD) -> tuple:
    return ("iq", itype, to, payload)


SU = "service-unavailable"
NA = "not-allowed"

RULES = [
    # ---- message (RFC 6121 8.5) ------------------------------------------------------------
    ("message to an online bare JID", message(BOB), {"bob<-message/chat"}),
    ("message to an online full JID", message(BOB_FULL), {"bob<-message/chat"}),
    ("message to an unbound resource: as bare", message(BOB_GONE), {"bob<-message/chat"}),
    ("chat to an offline bare JID is kept", message(CAROL), {"offline:carol"}),
    ("normal to an offline full JID is kept", message(CAROL_FULL, "normal"), {"offline:carol"}),
    ("headline to an offline account: silence", message(CAROL, "headline"), set()),
    ("error to an offline account: silence", message(CAROL, "error"), set()),
    ("message to an unknown account", message(GHOST), {f"alice<-message/error/{SU}"}),
    ("message to an unknown full JID", message(GHOST_FULL), {f"alice<-message/error/{SU}"}),
    ("headline to an unknown account: silence", message(GHOST, "headline"), set()),
    ("groupchat to a bare JID", message(BOB, "groupchat"), {f"alice<-message/error/{SU}"}),
    (
        "groupchat to an unbound resource",
        message(BOB_GONE, "groupchat"),
        {f"alice<-message/error/{SU}"},
    ),
    ("chat to the hosted domain", message(D), {f"alice<-message/error/{SU}"}),
    ("headline to the hosted domain: silence", message(D, "headline"), set()),
    ("message to a component", message(COMPONENT), {"component<-message/chat"}),
    ("message to a JID on a component", message(COMP_USER), {"component<-message/chat"}),
    ("message to a closed foreign domain", message(FAR), {f"alice<-message/error/{NA}"}),
    (
        "message to a full JID on a closed foreign domain",
        message(f"{FAR}/r"),
        {f"alice<-message/error/{NA}"},
    ),
    # ---- presence (RFC 6121 4.6, 8.5) --------------------------------------------------------
    ("directed presence to an online bare JID", presence(BOB), {"bob<-presence/available"}),
    ("directed presence to an online full JID", presence(BOB_FULL), {"bob<-presence/available"}),
    ("directed presence to an offline account: silence", presence(CAROL), set()),
    ("directed presence to an unknown account: silence", presence(GHOST), set()),
    ("subscription request to an unknown account: silence", presence(GHOST, "subscribe"), set()),
    ("probe of an unknown account: silence", presence(GHOST_FULL, "probe"), set()),
    (
        "subscription request to an online account",
        presence(BOB, "subscribe"),
        {"bob<-presence/subscribe"},  # (roster pushes only reach sessions that fetched it)
    ),
    (
        "subscription request to the hosted domain (load presence) by a non-admin",
        presence(D, "subscribe"),
        {"alice<-presence/unsubscribed"},  # refused: only admins watch the load
    ),
    ("presence to a component", presence(COMPONENT), {"component<-presence/available"}),
    (
        "subscription request to a JID on a component",
        presence(COMP_USER, "subscribe"),
        {"component<-presence/subscribe"},
    ),
    (
        "directed presence to a closed foreign domain",
        presence(FAR),
        {f"alice<-presence/error/{NA}"},
    ),
    (
        "subscription request to a closed foreign domain",
        presence(FAR, "subscribe"),
        {f"alice<-presence/error/{NA}"},
    ),
    # ---- iq (RFC 6120 8.2.3, 10.5.3, RFC 6121 8.5.3) ----------------------------------------
    ("iq get to an online bare JID: the server answers", iq(BOB), {"alice<-iq/result"}),
    ("iq get to an offline bare JID: the server answers", iq(CAROL), {"alice<-iq/result"}),
    ("iq get to an unknown account", iq(GHOST), {f"alice<-iq/error/{SU}"}),
    ("iq get of no module to an account", iq(BOB, payload="urn:x"), {f"alice<-iq/error/{SU}"}),
    ("iq get to an online full JID", iq(BOB_FULL, payload="urn:x"), {"bob<-iq/get"}),
    ("iq get to an unbound resource", iq(BOB_GONE), {f"alice<-iq/error/{SU}"}),
    ("iq get to an offline full JID", iq(CAROL_FULL), {f"alice<-iq/error/{SU}"}),
    ("iq get to an unknown full JID", iq(GHOST_FULL), {f"alice<-iq/error/{SU}"}),
    ("iq get to the domain's module", iq(D, payload=ns.PING), {"alice<-iq/result"}),
    ("iq get of no module to the domain", iq(D, payload="urn:x"), {f"alice<-iq/error/{SU}"}),
    ("iq get to domain/resource", iq(f"{D}/x", payload=ns.PING), {f"alice<-iq/error/{SU}"}),
    ("iq result to an online full JID", iq(BOB_FULL, "result", None), {"bob<-iq/result"}),
    ("iq result to an unbound resource: silence", iq(BOB_GONE, "result", None), set()),
    ("iq error to an unknown full JID: silence", iq(GHOST_FULL, "error", None), set()),
    ("iq result nobody asked for to the domain: silence", iq(D, "result", None), set()),
    ("iq get with no payload", iq(BOB_FULL, payload=None), {"alice<-iq/error/bad-request"}),
    ("iq get to a component", iq(COMPONENT, payload="urn:x"), {"component<-iq/get"}),
    ("iq set to a JID on a component", iq(COMP_USER, "set", "urn:x"), {"component<-iq/set"}),
    ("iq get to a closed foreign domain", iq(FAR), {f"alice<-iq/error/{NA}"}),
    ("iq get to a full JID on a closed foreign domain", iq(f"{FAR}/r"), {f"alice<-iq/error/{NA}"}),
    ("iq result to a closed foreign domain: silence", iq(FAR, "result", None), set()),
]


def build(kind: str, stype: str | None, to: str, payload: str | None, sender: str):
    attrs = {"from": sender, "to": to, "id": "r1"}
    if stype is not None:
        attrs["type"] = stype
    stanza = make(ns.q(ns.CLIENT, kind), attrs)
    if kind == "message":
        stanza.append(make(ns.q(ns.CLIENT, "body"), text="hello"))
    if payload == ns.VCARD:
        stanza.append(make(ns.q(ns.VCARD, "vCard")))
    elif payload is not None:
        stanza.append(make(ns.q(payload, "query")))
    return stanza


def observe(stanza) -> str:
    kind = stanza.tag.rpartition("}")[2]
    stype = stanza.get("type") or ("available" if kind == "presence" else "normal")
    out = f"{kind}/{stype}"
    if stype == "error":
        error = stanza.find(ns.q(ns.CLIENT, "error"))
        condition = next(iter(error)).tag.rpartition("}")[2]
        out += f"/{condition}"
    return out


async def observations(world: World) -> set[str]:
    seen = set()
    for name, link in world.links.items():
        seen |= {f"{name}<-{observe(s)}" for s in link.received}
    seen |= {f"component<-{observe(s)}" for s in world.component.received}
    seen |= {f"remote<-{observe(s)}" for s in world.remote.received}
    for local in ("bob", "carol", "ghost"):
        kept = await world.server.storage.pop_offline(f"{local}@{D}")
        seen |= {f"offline:{local}" for _ in kept}
    return seen


async def populated(world: World) -> World:
    for name in ("alice", "bob", "carol"):
        await world.account(name)
    for name in ("bob", "carol"):  # published: the server answers for them (unpublished: T-08)
        await world.server.storage.set_vcard(f"{name}@{D}", "<vCard xmlns='vcard-temp'/>")
    world.online("alice", "desk")
    world.online("bob", "phone")
    return world


@pytest.mark.parametrize(("case", "stanza", "expected"), RULES, ids=[r[0] for r in RULES])
async def test_rule(world: World, case: str, stanza: tuple, expected: set[str]) -> None:
    await populated(world)
    await world.route(build(*stanza, sender=f"alice@{D}/desk"), sender="alice")
    assert await observations(world) == expected


# ---- what the server makes goes through the same decision (Router.send / bounce) ------------


async def test_bounce_to_a_component_sender_reaches_the_component(world: World) -> None:
    await populated(world)
    await world.route(build("message", "chat", GHOST, None, sender=COMP_USER))
    assert await observations(world) == {f"component<-message/error/{SU}"}


async def test_bounce_to_a_remote_sender_goes_out_through_the_federation_seam(
    world: World,
) -> None:
    await populated(world)
    world.server.router.remote = world.remote  # as if federation were open to the sender
    await world.route(build("iq", "get", GHOST, ns.VCARD, sender=f"{FAR}/r"))
    assert await observations(world) == {f"remote<-iq/error/{SU}"}


async def test_server_answers_a_component_through_the_router(world: World) -> None:
    await populated(world)
    await world.route(build("iq", "get", D, ns.PING, sender=COMP_USER))
    assert await observations(world) == {"component<-iq/result"}


async def test_presence_to_a_component_from_the_presence_module_is_routed(
    world: World,
) -> None:
    """presence.py no longer decides local-or-remote itself: a subscriber on a component gets
    alice's unavailable presence through the router."""
    await populated(world)
    await world.server.storage.put_roster_item(
        f"alice@{D}", RosterItem(COMP_USER.split("/")[0], subscription="from")
    )
    away = build("presence", "unavailable", "", None, sender=f"alice@{D}/desk")
    del away.attrib["to"]
    await world.route(away, sender="alice")
    assert await observations(world) == {"component<-presence/unavailable"}


async def test_a_bounce_reaches_its_sender_even_while_its_output_is_full(world: World) -> None:
    """An error answers the sender's own stanza, as a reply does: it is not kept or dropped
    like traffic to a client that does not read (it sends no more while full)."""
    await populated(world)
    world.links["alice"].full = True
    await world.route(build("message", "chat", GHOST, None, sender=f"alice@{D}/desk"), "alice")
    assert await observations(world) == {f"alice<-message/error/{SU}"}
