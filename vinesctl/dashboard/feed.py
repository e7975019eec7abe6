"""The async worker behind the dashboard and `vinesctl presence --watch`.

`Watcher.run()` logs in (vinesctl.xmpp.session.open_session), then:

- presence: starts the server's presence feed (`urn:vinesctl:presence-feed`) and applies its
  snapshot and deltas to the `Board`; a gap in `seq` starts a new feed (whose snapshot the board
  diffs against what it showed). A server without the feed in disco (Prosody, ejabberd) is polled
  instead: the XEP-0133 online users list every `poll_interval` seconds, and the status says so.
- load: subscribes to the domain and reads the `<load xmlns='urn:vinesctl:load:0'/>` its
  presence carries; if no presence comes, polls the load iq; a server without it has no load.
  Besides, the nodes serving the service (our `urn:vinesctl:admin#cluster`), polled, for the
  load panel's per-node lines; a server without that command shows none.
- connection loss: reconnects with exponential backoff (1, 2, 4 ... 30 s), saying so.

It runs on the caller's event loop (Textual's, in the dashboard), creates the slixmpp client
there, and reports through a `Listener`: no Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from vinesctl.dashboard.model import Board, Change, FeedTracker, LoadHistory, LoadSample
from vinesctl.errors import VinesctlError

log = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class Refused(VinesctlError):
    """The server will not show this account its users' presence: retrying will not help."""


class Listener(Protocol):
    def changes(self, changes: list[Change]) -> None: ...

    def status(self, state: str, text: str) -> None: ...

    def load(self, sample: LoadSample | None) -> None: ...

    def note(self, text: str, level: str = "info") -> None: ...


class Watcher:
    """Keeps `board` (and `history`) in step with the server, forever, until cancelled.

    States reported through `listener.status`: connecting, live (the feed), polling (the
    fallback), reconnecting, failed (the first login failed: `run()` raises)."""

    def __init__(
        self,
        settings: Any,
        listener: Listener,
        board: Board | None = None,
        history: LoadHistory | None = None,
        *,
        poll_interval: float = 3.0,
        load_wait: float = 5.0,
        load_poll_interval: float = 5.0,
        timeout: float = 20.0,
        backoff: tuple[float, ...] = BACKOFF,
        use_feed: bool = True,
        want_load: bool = True,
        keepalive: float = 30.0,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.board = board if board is not None else Board()
        self.history = history if history is not None else LoadHistory()
        self.poll_interval = poll_interval
        self.load_wait = load_wait
        self.load_poll_interval = load_poll_interval
        self.timeout = timeout
        self.backoff = backoff
        self.use_feed = use_feed
        self.want_load = want_load
        self.keepalive = keepalive
        self.client: Any = None  # the logged-in client while connected (for actions)
        self.mode = "connecting"  # connecting | live | polling | reconnecting
        self.features: set[str] = set()
        self.tracker = FeedTracker()
        self.connections = 0
        self._tasks: set[asyncio.Task] = set()
        self._load_seen = asyncio.Event()
        self._lost: asyncio.Future[str] | None = None
        self._pending: list[Any] = []
        self.synced = asyncio.Event()  # the board holds a complete picture (snapshot or poll)

    @property
    def domain(self) -> str:
        return self.settings.domain

    @property
    def has_feed(self) -> bool:
        """The server offers the presence feed (its namespace or node in disco#info)."""
        from vinesctl.xmpp import presence as wire

        return bool({wire.NS_FEED, wire.NODE_FEED} & self.features)

    def _status(self, state: str, text: str) -> None:
        self.mode = state
        self.listener.status(state, text)

    async def run(self) -> None:
        from vinesctl.xmpp.session import open_session

        attempt = 0
        while True:
            where = f"{self.settings.address} as {self.settings.jid}"
            if attempt == 0:
                self._status("connecting", f"connecting to {where}")
            reason = "connection lost"
            try:
                async with open_session(
                    self.settings, ("xep_0030", "xep_0199"), self.timeout
                ) as client:
                    attempt = 0
                    self.connections += 1
                    reason = await self._session(client)
            except Refused as exc:
                self._status("failed", exc.line())
                raise
            except VinesctlError as exc:
                if self.connections == 0:
                    self._status("failed", exc.line())
                    raise
                reason = exc.message
            finally:
                self.client = None
                await self._cancel_tasks()
            delay = self.backoff[min(attempt, len(self.backoff) - 1)]
            # a retry that failed did not disconnect anything: say what it was
            what = f"disconnected ({reason})" if attempt == 0 else f"attempt failed ({reason})"
            attempt += 1
            # said once, as a status: a listener that logs notes logs this too (the dashboard)
            self._status("reconnecting", f"{what}; reconnecting in {delay:g}s (attempt {attempt})")
            await asyncio.sleep(delay)
            self._status("connecting", f"reconnecting to {where} (attempt {attempt})")

    # ---- one logged-in session -------------------------------------------------------------

    async def _session(self, client: Any) -> str:
        from vinesctl.xmpp import presence as wire

        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()
        self._lost = lost

        def on_disconnected(reason: Any) -> None:
            if not lost.done():
                lost.set_result(str(reason or "connection closed"))

        client.add_event_handler("disconnected", on_disconnected)
        self.client = client
        self.tracker = FeedTracker()
        self._pending = pending = []  # feed messages that came before the command's answer

        def on_feed(msg: Any) -> None:
            if msg["from"].bare != self.domain:
                return
            feed = msg.xml.find(f"{{{wire.NS_FEED}}}feed")
            parsed = wire.parse_feed(feed) if feed is not None else None
            if parsed is None:
                return
            if self.tracker.id is None:
                pending.append(parsed)
                return
            self._feed_message(parsed)

        def on_presence(stanza: Any) -> None:
            if stanza["from"].full != self.domain:
                return
            el = stanza.xml.find(f"{{{wire.NS_LOAD}}}load")
            if el is None:
                return
            show = stanza["show"] if stanza["type"] in ("away", "xa", "dnd", "chat") else ""
            self._got_load(wire.parse_load(el, show, stanza["status"]), "push")

        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        client.register_handler(
            Callback(
                "vinesctl presence feed",
                MatchXPath(f"{{jabber:client}}message/{{{wire.NS_FEED}}}feed"),
                on_feed,
            )
        )
        client.add_event_handler("presence", on_presence)
        # available, but with a negative priority: messages to the bare JID are not for us
        client.send_presence(ppriority=-1)

        self.features = await wire.features(client, self.domain, self.timeout)
        self._spawn(self._presence(client))
        if self.want_load:
            self._spawn(self._load(client))
            self._spawn(self._nodes(client))
        if self.keepalive > 0:
            self._spawn(self._ping(client))
        return await lost

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.listener.note(f"worker failed: {exc}", "error")
            log.debug("worker failed", exc_info=exc)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # gather, not suppress(CancelledError): a cancellation of run() itself must go through
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _ping(self, client: Any) -> None:
        """A connection that silently died (no FIN) shows as a ping without answer: end it,
        so the reconnection starts (XEP-0199)."""
        from slixmpp.exceptions import IqError, IqTimeout

        while True:
            await asyncio.sleep(self.keepalive)
            try:
                await client.plugin["xep_0199"].ping(jid=self.domain, timeout=self.keepalive / 2)
            except IqTimeout:
                self.listener.note("the server stopped answering pings", "warn")
                if self._lost is not None and not self._lost.done():
                    self._lost.set_result("no answer to ping")
                client.abort()
                return
            except IqError:
                pass  # an error reply is an answer: the connection lives

    # ---- presence: the feed, or polling ----------------------------------------------------

    async def _presence(self, client: Any) -> None:
        if self.use_feed and self.has_feed:
            try:
                await self._start_feed(client)
                return
            except VinesctlError as exc:
                self.listener.note(f"the presence feed did not start: {exc.line()}", "warn")
        await self._poll(client)

    async def _start_feed(self, client: Any) -> None:
        from vinesctl.xmpp import presence as wire

        self.tracker.id = None
        feed_id = await wire.start_feed(client, self.domain, self.timeout)
        self.tracker.start(feed_id)
        self._status("live", f"live: presence feed of {self.domain} (pushed)")
        self.listener.note(f"presence feed {feed_id} started")
        early, self._pending[:] = list(self._pending), []
        for message in early:  # those of an older feed are stale now
            self._feed_message(message)

    def _feed_message(self, message: Any) -> None:
        verdict = self.tracker.check(message.id, message.seq, message.kind, message.last)
        if verdict in ("stale", "duplicate"):
            return
        if verdict == "gap":
            self.listener.note(
                f"presence feed gap (seq {message.seq} after {self.tracker.seq}): restarting",
                "warn",
            )
            self.tracker.id = None  # later messages of the broken feed are stale
            client = self.client
            if client is not None:
                self._spawn(self._start_feed(client))
            return
        if message.kind == "snapshot":
            if message.seq == 1:
                self.board.begin_snapshot()
            self.board.add_snapshot(message.events)
            if message.last:
                self.listener.changes(self.board.end_snapshot())
                self.synced.set()
            return
        changes: list[Change] = []
        for event in message.events:
            changes += self.board.apply(event)
        if changes:
            self.listener.changes(changes)

    async def _poll(self, client: Any) -> None:
        from vinesctl.xmpp import presence as wire

        if not self.use_feed:
            why = "the presence feed switched off"
        elif not self.has_feed:
            why = "no presence feed"
        else:
            why = "the presence feed refused"
        self._status(
            "polling",
            f"polling: {self.domain} has {why}; online users list every {self.poll_interval:g}s",
        )
        self.listener.note(f"{why} on {self.domain}: polling the online users list", "warn")
        while True:
            try:
                events = await wire.online_users(client, self.domain, self.timeout)
            except VinesctlError as exc:
                if getattr(exc, "condition", "") in ("forbidden", "not-authorized"):
                    if self._lost is not None and not self._lost.done():
                        self._lost.set_exception(
                            Refused(
                                f"{self.domain} shows who is online to its administrators only",
                                "use a profile whose account is an admin of the server",
                            )
                        )
                    return
                self._status("polling", f"polling failed: {exc.line()}")
                await asyncio.sleep(max(self.poll_interval, 10))
                continue
            changes = self.board.replace(events, "poll")
            if changes:
                self.listener.changes(changes)
            self.synced.set()
            await asyncio.sleep(self.poll_interval)

    # ---- load ------------------------------------------------------------------------------

    def _got_load(self, sample: LoadSample, source: str) -> None:
        self._load_seen.set()
        self.history.source = source
        self.history.record(sample)
        self.listener.load(sample)

    async def _load(self, client: Any) -> None:
        from vinesctl.xmpp import presence as wire

        if wire.NS_LOAD not in self.features:
            self.history.source = "none"
            self.listener.load(None)
            return
        self._load_seen = asyncio.Event()
        client.send_presence_subscription(pto=self.domain)
        try:
            await asyncio.wait_for(self._load_seen.wait(), self.load_wait)
            return  # pushed from now on
        except TimeoutError:
            pass
        self.listener.note("no load presence from the server: polling its load", "warn")
        while True:
            try:
                self._got_load(await wire.current_load(client, self.domain, self.timeout), "poll")
            except VinesctlError as exc:
                self.listener.note(f"load unavailable: {exc.line()}", "warn")
                self.history.source = "none"
                self.listener.load(None)
                return
            await asyncio.sleep(self.load_poll_interval)

    async def _nodes(self, client: Any) -> None:
        """The cluster's nodes, every `load_poll_interval` seconds (nodes are not pushed); ends
        quietly when the server has no such command or refuses it."""
        from vinesctl.xmpp import admin

        while True:
            try:
                nodes = (await admin.cluster(client, self.domain)).nodes
            except VinesctlError as exc:
                log.debug("no cluster nodes: %s", exc.line())
                return
            self.history.nodes = nodes
            self.listener.load(self.history.current)
            await asyncio.sleep(self.load_poll_interval)


async def stop_feed(client: Any, domain: str, timeout: float = 5) -> None:
    """Ask the server to stop this session's feed (it also stops when the session ends)."""
    from vinesctl.xmpp import presence as wire

    with contextlib.suppress(VinesctlError):
        await wire.stop_feed(client, domain, timeout)
