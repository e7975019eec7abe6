"""A live feed of every user's presence (every node's, in a cluster), for administrators.

An admin runs the ad-hoc command `urn:vinesctl:presence-feed` on a domain. The answer carries the
feed id; then the server sends messages from the domain to the admin's full JID:

    <message from='DOMAIN'>
      <feed xmlns='urn:vinesctl:presence-feed:0' id='ID' seq='N' kind='snapshot|delta'
            [last='true']>
        <forwarded xmlns='urn:xmpp:forward:0'>
          <delay xmlns='urn:xmpp:delay' stamp='...'/>
          <presence from='user@DOMAIN/res' [type='unavailable']>...</presence>
        </forwarded> ...
      </feed>
    </message>

The snapshot (every available session, `last='true'` on its final message, which may carry no
items) comes first, then deltas. The snapshot is taken and the feed registered in one step with
no await between, and presence changes are observed in the same step as the state changes
(`presence/changed`), so nothing is lost or duplicated between snapshot and deltas. `seq` grows
by one per message, so a client sees any gap.

A slow admin is not queued without bound: pending deltas are coalesced per full JID (the latest
presence wins) and sent when nothing waits in the admin's output queue (a full queue would send
the feed's messages to offline storage). Connected components' presence to the server (their
load, `modules/components.py`) is part of every feed: components serve all hosted domains.
The feed ends with the admin's
session, or with the command `urn:vinesctl:presence-feed#stop`.

In a cluster (cluster/), the feed covers every node's users of the domain. What holds across
nodes, and how:
- Another node's user's change reaches this node on the `vines:presence` channel, published by
  the same Redis script that writes the change into the directory, while any node runs a feed
  (`vines:feeds`, which this node joins before it reads the directory for the snapshot). So a
  change is either in the snapshot (written before the read) or arrives as a delta: none is
  lost while this node's Redis connection holds. A change may be both in the snapshot and
  among the deltas that follow it, so a delta can briefly repeat a state older than the one the
  snapshot showed; for each remote user, the last state the feed gives is its current one.
- Deltas of one remote user come in the order their node wrote them (one script per change,
  one channel); a node coalesces a user's changes between two of its directory writes (the
  latest wins, as the feed does for a slow admin). Between users of different nodes there is
  no order, and the delay stamp is when this node learned of the change.
- A node that dies is purged by a survivor after its liveness key expired: each of its available
  users then comes as an unavailable delta (the purge script publishes them).
- Redis pub/sub is at most once: a delta published while this node was disconnected from Redis
  is lost (the log says when Redis went and came back); restarting the feed resynchronises.
- `seq` and coalescing are per feed, on this node, as on one node.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from vines_server.core.api import ModuleAPI
from vines_server.core.commands import Command, Context, Result
from vines_server.core.sessions import Session
from vines_server.xmpp import ns, tokens
from vines_server.xmpp.forms import Field, Form
from vines_server.xmpp.jid import JID
from vines_server.xmpp.stanza import make

NODE = "urn:vinesctl:presence-feed"
NODE_STOP = NODE + "#stop"
NS_FEED = "urn:vinesctl:presence-feed:0"
NS_FORWARD = "urn:xmpp:forward:0"
BATCH = 200  # presences per message
RETRY = 0.05  # seconds between checks while the admin's connection drains


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def forwarded(presence: Element, sender: JID, when: datetime) -> Element:
    inner = copy.deepcopy(presence)
    inner.attrib = {k: v for k, v in inner.attrib.items() if k in ("type", "id")}
    inner.set("from", str(sender))
    wrapper = make(ns.q(NS_FORWARD, "forwarded"))
    wrapper.append(make(ns.q(ns.DELAY, "delay"), {"stamp": _stamp(when)}))
    wrapper.append(inner)
    return wrapper


class Feed:
    """One admin session's feed: snapshot first, then coalesced deltas, never unbounded."""

    def __init__(self, api: ModuleAPI, admin: Session, domain: str) -> None:
        self.api = api
        self.admin = admin
        self.domain = domain
        self.id = tokens.token_urlsafe(9)
        self.seq = 0
        self.snapshot: list[tuple[Element, JID, datetime]] | None = []
        self.pending: dict[JID, Element] = {}  # full JID -> latest forwarded presence
        self._scheduled = False
        self.closed = False
        self.ready = True  # False while the other nodes' part of the snapshot is read

    def add_to_snapshot(self, found: list[tuple[JID, Element, datetime]]) -> None:
        """Other nodes' available sessions (the cluster's directory)."""
        assert self.snapshot is not None
        self.snapshot.extend(
            (presence, jid, since) for jid, presence, since in found if jid.domain == self.domain
        )

    def take_snapshot(self) -> None:
        for session in self.api.sessions:
            if session.jid.domain == self.domain and session.presence is not None:
                # references only (a session's presence element is replaced, never changed,
                # so it stays as it was now); the copying happens batch by batch in flush()
                self.snapshot.append((session.presence, session.jid, session.since))
        for status, presence in self.api.components.presences():
            self.snapshot.append((presence, JID.parse(presence.get("from", "")), status.since))

    def observe(self, session: Session, stanza: Element) -> None:
        if session.jid.domain == self.domain:
            self.note(session.jid, stanza)

    def note(self, sender: JID, stanza: Element) -> None:
        if self.closed:
            return
        self.pending[sender] = forwarded(stanza, sender, datetime.now(UTC))
        self.schedule()

    def schedule(self, delay: float = 0.0) -> None:
        if not self._scheduled and not self.closed:
            self._scheduled = True
            asyncio.get_running_loop().call_later(delay, self.flush)

    def _congested(self) -> bool:
        return self.admin.backlog > 0  # the socket buffer is at its limit

    def flush(self) -> None:
        """Send one message, then yield to the loop: a snapshot of 10 000 sessions must not
        hold everyone else up while it is serialized."""
        self._scheduled = False
        if self.closed or not self.ready:  # deltas coalesce meanwhile; start() schedules
            return
        if self._congested():
            self.schedule(RETRY)  # deltas keep coalescing in `pending` meanwhile
            return
        if self.snapshot is not None:
            batch, self.snapshot = self.snapshot[:BATCH], self.snapshot[BATCH:]
            last = not self.snapshot
            self._send("snapshot", [forwarded(*entry) for entry in batch], last=last)
            if last:
                self.snapshot = None
        elif self.pending:
            jids = list(self.pending)[:BATCH]
            self._send("delta", [self.pending.pop(jid) for jid in jids])
        if self.snapshot is not None or self.pending:
            self.schedule()

    def _send(self, kind: str, items: list[Element], last: bool = False) -> None:
        self.seq += 1
        attrs = {"id": self.id, "seq": str(self.seq), "kind": kind}
        if last:
            attrs["last"] = "true"
        feed = make(ns.q(NS_FEED, "feed"), attrs, children=items)
        message = make(ns.MESSAGE, {"from": self.domain, "to": str(self.admin.jid)})
        message.append(feed)
        self.api.deliver(message, self.admin)


def setup(api: ModuleAPI) -> None:
    feeds: dict[JID, Feed] = {}  # admin full JID -> feed
    admins = api.use("admins")
    registry = api.use("adhoc")

    async def start(ctx: Context) -> Result:
        admin = api.sessions.get(ctx.requester)
        if admin is None:  # pragma: no cover - commands only arrive from bound sessions
            return Result.info("no session to feed")
        old = feeds.pop(ctx.requester, None)
        if old is not None:
            old.closed = True
        feed = Feed(api, admin, ctx.service.domain)
        # Snapshot and registration in one step: no await may come between these two lines.
        feed.take_snapshot()
        feeds[ctx.requester] = feed
        cluster = api.cluster
        if cluster is not None:
            # other nodes announce their changes from now on, then the directory is read:
            # an older change is in what it holds, a newer one arrives as a delta
            feed.ready = False
            await cluster.watch_presence(lambda: bool(feeds))
            try:
                feed.add_to_snapshot(await cluster.presences(feed.domain))
            except Exception as exc:  # Redis away: this node's part only
                api.log.warning("presence feed without the other nodes' users: %s", exc)
            feed.ready = True
        feed.schedule()
        form = Form(
            "result",
            title="Presence feed",
            fields=[Field("feed", "text-single", "Feed id", values=[feed.id])],
        )
        return Result.info(f"presence feed {feed.id} started for {ctx.service.domain}", form)

    async def stop(ctx: Context) -> Result:
        feed = feeds.pop(ctx.requester, None)
        if feed is None:
            return Result.info("no presence feed was running for this session")
        feed.closed = True
        unwatch()
        return Result.info(f"presence feed {feed.id} stopped")

    def changed(session: Session, stanza: Element) -> None:
        for feed in feeds.values():
            feed.observe(session, stanza)

    def remote_changed(sender: JID, stanza: Element) -> None:
        for feed in feeds.values():
            if sender.domain == feed.domain:
                feed.note(sender, stanza)

    def unwatch() -> None:
        cluster = api.cluster
        if cluster is not None and not feeds:
            api.spawn(cluster.watch_presence(lambda: bool(feeds)))

    def component_changed(sender: JID, stanza: Element) -> None:
        for feed in feeds.values():
            feed.note(sender, stanza)

    def closed(session: Session) -> None:
        feed = feeds.pop(session.jid, None)
        if feed is not None:
            feed.closed = True
            unwatch()

    registry.add(Command(NODE, "Start a live feed of presence", start, (), admins.allow_admin))
    registry.add(Command(NODE_STOP, "Stop the presence feed", stop, (), admins.allow_admin))
    api.on("presence/changed", changed)
    api.on("component/presence", component_changed)
    api.on("cluster/presence", remote_changed)  # another node's user (cluster/node.py)
    api.on("session/closed", closed, priority=100)
    api.feature(NS_FEED)
