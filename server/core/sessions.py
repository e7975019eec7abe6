"""Who is connected: bare JID -> bound resources, with each resource's presence (Vines' Router
tables). Pure bookkeeping; writing to a connection goes through `Session.send`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from xml.etree.ElementTree import Element

from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.jid import JID


class Link(Protocol):
    """What a session needs from its connection."""

    def send_element(self, element: Element, confirm: Confirm | None = None) -> None:
        """`confirm` is called once the element is delivered (written to the socket; with
        stream management, acknowledged by the client); never if it is not."""

    def close(self, error: StreamError | None = None) -> None: ...
    @property
    def output_full(self) -> bool: ...
    @property
    def output_backlog(self) -> int: ...


Confirm = Callable[[], None]


# one per bound resource, 10 000 idle at a time: slots, not a per-instance dict (issue 14);
# modules keep weak references to sessions (announce.py)
@dataclass(eq=False, slots=True, weakref_slot=True)
class Session:
    jid: JID  # full
    link: Link
    info: dict[str, Any] = field(default_factory=dict)  # ip, tls version, cipher, mechanism...
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    presence: Element | None = None  # last broadcast available presence; None = unavailable
    priority: int = 0
    interested: bool = False  # fetched the roster, so it gets roster pushes (RFC 6121 2.1.6)
    # JIDs given directed presence: the shared empty frozenset until the first, as on nearly
    # every session (an empty set is 216 bytes; issue 14)
    directed: set[str] | frozenset[str] = frozenset()
    managed: bool = False  # stream management (XEP-0198) is on: its messages are held (pending)

    @property
    def available(self) -> bool:
        return self.presence is not None

    def send(self, element: Element, confirm: Confirm | None = None) -> None:
        self.link.send_element(element, confirm)

    @property
    def congested(self) -> bool:
        """Its output queue is full: the peer is not reading (design decision 12)."""
        return self.link.output_full

    @property
    def backlog(self) -> int:
        """Bytes waiting for room in its socket buffer."""
        return self.link.output_backlog


class SessionRegistry:
    def __init__(self) -> None:
        self._by_bare: dict[JID, dict[str, Session]] = {}

    def add(self, session: Session) -> Session | None:
        """Registers a bound session; returns the session it replaces (same full JID), if any."""
        resources = self._by_bare.setdefault(session.jid.bare, {})
        old = resources.get(session.jid.resource or "")
        resources[session.jid.resource or ""] = session
        return old

    def remove(self, session: Session) -> bool:
        resources = self._by_bare.get(session.jid.bare)
        if not resources or resources.get(session.jid.resource or "") is not session:
            return False
        del resources[session.jid.resource or ""]
        if not resources:
            del self._by_bare[session.jid.bare]
        return True

    def get(self, full: JID) -> Session | None:
        resources = self._by_bare.get(full.bare)  # no empty dict made for a miss: every stanza
        return None if resources is None else resources.get(full.resource or "")

    def resources(self, bare: JID) -> list[Session]:
        return list(self._by_bare.get(bare.bare, {}).values())

    def available(self, bare: JID) -> list[Session]:
        return [s for s in self.resources(bare) if s.available]

    def count(self, bare: JID) -> int:
        return len(self._by_bare.get(bare.bare, {}))

    def users(self) -> list[JID]:
        return list(self._by_bare)

    def __iter__(self) -> Iterator[Session]:
        for resources in list(self._by_bare.values()):
            yield from list(resources.values())

    def __len__(self) -> int:
        return sum(len(r) for r in self._by_bare.values())
