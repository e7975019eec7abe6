"""Resources bound on other nodes, as sessions of this one: routing and every module reach them
with the same calls as local sessions (`sessions.available(bare)`, `deliver(stanza, session)`),
and a `RemoteLink` carries what they are sent to their node's channel.

`ClusterSessions` is the session registry of a cluster node: its own sessions (the registry it
extends) plus a mirror of other nodes' resources, refreshed from the directory for the accounts
a stanza concerns, before the stanza is routed (`refresh`). Counting and listing the node's
own sessions (`len`, iteration, `users`) stay local: figures and metrics are per node.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from vines_server.cluster.directory import Entry
from vines_server.core.sessions import Confirm, Session, SessionRegistry
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.jid import JID, JIDError

if TYPE_CHECKING:
    from vines_server.config import Limits

MIRRORED = 50_000  # accounts whose other-node resources are remembered at most (oldest go)

Send = Callable[[str, JID, Element, "Confirm | None"], None]  # (node, to, stanza, confirm)
Kick = Callable[[str, JID, "StreamError | None"], None]


class RemoteLink:
    """A resource's connection, on another node: what it is sent goes over that node's channel.
    Never full here: the receiving node applies its own output bounds (decision 12)."""

    def __init__(self, node: str, jid: JID, send: Send, kick: Kick) -> None:
        self.node = node
        self.jid = jid
        self._send = send
        self._kick = kick

    def send_element(self, element: Element, confirm: Confirm | None = None) -> None:
        self._send(self.node, self.jid, element, confirm)

    def close(self, error: StreamError | None = None) -> None:
        self._kick(self.node, self.jid, error)

    @property
    def output_full(self) -> bool:
        return False

    @property
    def output_backlog(self) -> int:
        return 0


def remote_node(session: Session) -> str | None:
    """The node a session lives on, None for this node's own."""
    link = session.link
    return link.node if isinstance(link, RemoteLink) else None


class ClusterSessions(SessionRegistry):
    def __init__(
        self,
        node: str,
        limits: Callable[[], Limits],
        send: Send,
        kick: Kick,
        dropped: Callable[[Session], object],
    ) -> None:
        super().__init__()
        self.node = node
        self._limits = limits
        self._send = send
        self._kick = kick
        self._dropped = dropped  # a proxy that no longer stands for a resource
        self._remote: dict[JID, dict[str, Session]] = {}  # bare -> resource -> proxy

    # ---- the mirror ------------------------------------------------------------------------

    def mirror(self, bare: JID, entries: dict[str, Entry]) -> None:
        """Replace what this node knows of `bare`'s resources on other nodes. A resource that
        did not change keeps its proxy object (pending messages track it by identity)."""
        from vines_server.storage.stanzas import parse_stored

        old = self._remote.pop(bare, {})
        new: dict[str, Session] = {}
        for resource, entry in entries.items():
            if entry.node == self.node:
                continue  # this node's own sessions are the local registry's
            try:
                full = JID.parse(f"{bare}/{resource}")
            except JIDError:
                continue
            session = old.get(resource)
            if session is None or remote_node(session) != entry.node:
                link = RemoteLink(entry.node, full, self._send, self._kick)
                # managed: a message to it is held in the store until its node confirms it
                session = Session(full, link, managed=True)
            # what the admin listings show of it (its address, TLS, SASL, since when)
            session.info = {"node": entry.node, **entry.info}
            if entry.since:
                session.since = datetime.fromtimestamp(entry.since, UTC)
            session.priority = entry.priority
            session.interested = entry.interested
            session.presence = None
            if entry.available and entry.presence is not None:
                try:
                    session.presence = parse_stored(entry.presence, self._limits())
                except StreamError:
                    session.presence = Element("{jabber:client}presence")
            new[resource] = session
        for resource, session in old.items():
            if new.get(resource) is not session:
                self._dropped(session)
        if new:
            self._remote[bare] = new
            while len(self._remote) > MIRRORED:
                for session in self._remote.pop(next(iter(self._remote))).values():
                    self._dropped(session)

    def forget_node(self, node: str) -> None:
        for bare in list(self._remote):
            kept = {r: s for r, s in self._remote[bare].items() if remote_node(s) != node}
            for session in self._remote[bare].values():
                if remote_node(session) == node:
                    self._dropped(session)
            if kept:
                self._remote[bare] = kept
            else:
                del self._remote[bare]

    def own(self, bare: JID) -> list[Session]:
        """This node's own sessions of `bare`."""
        return super().resources(bare)

    def local(self, full: JID) -> Session | None:
        """This node's own session for `full`."""
        return super().get(full)

    # ---- the registry, cluster-wide -------------------------------------------------------

    def get(self, full: JID) -> Session | None:
        found = super().get(full)
        if found is None:
            found = self._remote.get(full.bare, {}).get(full.resource or "")
        return found

    def resources(self, bare: JID) -> list[Session]:
        own = super().resources(bare)
        names = {s.jid.resource for s in own}
        others = self._remote.get(bare.bare, {}).values()
        return own + [s for s in others if s.jid.resource not in names]

    def count(self, bare: JID) -> int:
        return len(self.resources(bare))
