"""The routing tier: a real Server's router and modules on the memory store, no sockets.

Sessions are bound to in-memory links that record what they are sent; a component and the
federation seam are recording destinations. A test routes one stanza and reads what came out.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from vines_server.core.sessions import Session
from vines_server.server import Server
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.jid import JID
from vines_server.xmpp.sasl.credentials import derive_all
from vines_server.xmpp.stanza import make

from tests.support.xmpp import DOMAIN, PKI, TEST_ITERATIONS, make_pki, server_config

COMPONENT = "work.vines.test"
REMOTE = "remote.example"


class Link:
    """A session's connection, in memory: what it is sent, in order."""

    def __init__(self) -> None:
        self.received: list[Element] = []
        self.closed: StreamError | None = None
        self.full = False

    def send_element(self, element: Element, confirm: Callable[[], None] | None = None) -> None:
        self.received.append(copy.deepcopy(element))
        if confirm is not None:  # in memory, sent is written: a stored message may go
            confirm()

    def close(self, error: StreamError | None = None) -> None:
        self.closed = error

    @property
    def output_full(self) -> bool:
        return self.full

    @property
    def output_backlog(self) -> int:
        return 0


class Recorder:
    """A destination beyond the server (a component, a remote domain)."""

    def __init__(self) -> None:
        self.received: list[Element] = []

    async def send(self, stanza: Element) -> None:
        self.received.append(copy.deepcopy(stanza))


@dataclass
class World:
    server: Server
    links: dict[str, Link] = field(default_factory=dict)  # name -> link of its one session
    sessions: dict[str, Session] = field(default_factory=dict)
    component: Recorder = field(default_factory=Recorder)
    remote: Recorder = field(default_factory=Recorder)

    async def account(self, local: str) -> JID:
        jid = JID.parse(f"{local}@{DOMAIN}")
        await self.server.storage.create_account(str(jid), derive_all("pw", TEST_ITERATIONS))
        return jid

    def online(self, name: str, resource: str, priority: int = 0) -> Session:
        """A bound session with initial presence sent (it is available)."""
        link = Link()
        session = Session(JID.parse(f"{name}@{DOMAIN}/{resource}"), link)
        session.presence = make(ns.q(ns.CLIENT, "presence"))
        session.priority = priority
        self.server.sessions.add(session)
        self.links[name], self.sessions[name] = link, session
        return session

    async def route(self, stanza: Element, sender: str | None = None) -> None:
        await self.server.router.route(stanza, self.sessions.get(sender) if sender else None)
        await self.settle()

    async def settle(self) -> None:
        """Until what the routing spawned (server-made stanzas, offline stores) is done."""
        for _ in range(20):
            pending = set(self.server._tasks)
            if not pending:
                return
            await asyncio.wait(pending)
        raise AssertionError("routing kept spawning tasks")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def world(tmp_path: Path, pki: PKI):
    server = Server(server_config(pki, tmp_path, backend="memory"))
    await server.open()
    w = World(server)
    server.router.components[COMPONENT] = w.component
    try:
        yield w
    finally:
        await server.stop()
