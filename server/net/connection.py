"""One stream connection, generic over the stream kind: a plain asyncio Protocol that runs TLS
through `StreamTLS` (small per-connection memory, unlike asyncio's SSL transport), feeds
plaintext to the kind's sans-I/O stream, and executes the actions it returns. What every stream
needs is here (TLS, reading in order, flow control, bounded output, deadlines, lingering close,
per-IP caps and bans); what one kind does with its own actions is its `StreamKind` (`C2S`:
account lookups, authentication, binding, stanzas to the router).

Input is processed strictly in order by at most one worker per connection, because some
actions await (account lookup, routing that touches storage). The worker runs at once in the
read's callback and becomes a task only when it has to wait (`eager`): most reads never do.
Reading pauses while the worker is behind, so a fast sender is slowed, not buffered without
bound.

Output is bounded the same way (design decision 12): stanzas for the peer wait in an
`OutputQueue` (a byte limit, `[limits] output_bytes`) until the socket buffer, itself bounded by
asyncio's write buffer limits, has room. While the queue is full the router keeps messages
offline and bounces iqs, the peer's own input waits, and a queue that stays full for
`[deadlines] output_stall` closes the stream with `policy-violation`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, cast
from xml.etree.ElementTree import Element

from vines_server import kdf
from vines_server.core.routing import keeps_offline
from vines_server.net import eager
from vines_server.net.output import OutputQueue, presence_key
from vines_server.net.reads import SharedBufferReads
from vines_server.net.tls import TLSSession
from vines_server.net.transport import StreamTLS, hold_writes, release_writes
from vines_server.xmpp import actions, c2s, sm, tokens
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.ns import IQ, MESSAGE, PRESENCE
from vines_server.xmpp.stanza import serialize
from vines_server.xmpp.stream import Stream

if TYPE_CHECKING:
    from vines_server.core.sessions import Session
    from vines_server.server import Server

log = logging.getLogger("vines_server.c2s")  # the name operators filter on; shared by kinds

MAX_QUEUED_CHUNKS = 8  # pause reading beyond this many unprocessed reads
# Bytes per second a connection may send, with a burst ([limits] read_rate, read_burst; the
# stream's bytes, after TLS): past them reading pauses, which delays and never loses data
# (design decision 5, XEP-0205). Every read also costs a fixed amount of work (asyncio callback,
# TLS records, parser call) whatever its size, counted as READ_COST bytes: a peer trickling one
# byte per segment cannot buy CPU cheaply, and while it is paused the kernel coalesces its
# segments into one read.
READ_COST = 512
LINGER = 2.0  # seconds a closed stream waits for the peer's FIN before the socket is dropped
# The socket write buffer: asyncio calls pause_writing() above WRITE_HIGH bytes and
# resume_writing() at WRITE_LOW; meanwhile stanzas wait in the (counted) output queue.
WRITE_HIGH = 64 * 1024
WRITE_LOW = 16 * 1024
# how often to look whether bytes waiting in asyncio's buffer reached the kernel, while a
# delivery waits to be confirmed (asyncio says when its buffer drains only after a pause)
WRITTEN_CHECK = 0.01
STANZA_STARTS = (b"<iq ", b"<message ", b"<presence ", b"<iq>", b"<message>", b"<presence>")


class StreamKind(Protocol):
    """What one stream kind adds to the generic connection."""

    def listener(self, direct_tls: bool) -> str:
        """The listener's name in logs, load and statistics."""
        ...

    def new_stream(self, server: Server, direct_tls: bool) -> Stream: ...

    async def execute(self, conn: StreamConnection, action: actions.Action) -> None:
        """An action of this kind (anything but Send, StartTLS and Close)."""
        ...

    def lost(self, conn: StreamConnection) -> None:
        """The connection is gone: undo what the kind registered for it."""


def runs_eagerly(server: Server) -> bool:
    """Whether a read may be handled before a task exists for it (net/eager.py): only where
    nothing a stanza's routing calls looks at asyncio's current task. Not in a cluster (the
    Redis client's timeouts bind the current task, and every stanza asks the directory first),
    and only on a storage that says so (`task_free`: SQLite's thread, memory)."""
    return server.cluster is None and getattr(server.storage, "task_free", False)


class StreamConnection(SharedBufferReads):  # an asyncio Protocol; reads: net/reads.py
    # one per connection, 10 000 at a time: slots instead of a per-instance dict, which
    # outgrows the shared-key form past 30 attributes (1.5 KiB per idle session; issue 14)
    __slots__ = (
        *("server", "kind", "tls_context", "direct_tls", "stream", "io", "transport"),
        *("session", "peer", "info", "detached", "sm", "sm_id"),
        *("_inbox", "_worker", "_pauses", "_read_tokens", "_closing", "_timers", "_last_read"),
        *("_refused", "_ip", "_ban_pending", "_lingering", "_output", "_writing_paused"),
        *("_seen_full", "_output_room", "_unsent_owner", "_unwritten", "metered", "unrouted"),
        *("_eager", "_loop"),
    )

    def __init__(
        self, server: Server, kind: StreamKind, tls_context: ssl.SSLContext, direct_tls: bool
    ) -> None:
        self.server = server
        self.kind = kind
        self.tls_context = tls_context
        self.direct_tls = direct_tls
        self.stream = kind.new_stream(server, direct_tls)
        self.io: StreamTLS | None = None  # plaintext until STARTTLS (or TLS from the start)
        self.transport: asyncio.Transport | None = None
        # the local session this link carries (c2s, once bound): its messages are kept
        # offline when they cannot be written, and it hears when the output drains
        self.session: Session | None = None
        self.peer = "?"
        self.info: dict[str, object] = {"listener": kind.listener(direct_tls)}
        self._inbox: list[bytes] = []  # a few reads (MAX_QUEUED_CHUNKS): smaller than a deque
        self._eager = runs_eagerly(server)
        # made by the loop that serves it, once: on Python 3.11 every get_running_loop() is a
        # getpid() system call, and every read asks the time
        self._loop = asyncio.get_running_loop()
        self._worker: asyncio.Task[None] | None = None
        # why reading is paused ("backlog", "rate"...): a tuple, rebound on change, so that
        # the usual empty one is the shared () rather than a 216-byte set per connection
        self._pauses: tuple[str, ...] = ()
        self._read_tokens = float(server.config.limits.read_burst)  # bytes
        # reads count against [limits] read_rate: every peer's, until a component proves its
        # secret (its traffic is the service's own, not a peer's to ration)
        self.metered = True
        self._closing = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._last_read = 0.0
        self._refused = False  # over the per-IP cap: closed at accept, never counted
        self._ip: str | None = None
        self._ban_pending = False  # this stream's failure just banned its IP
        self._lingering = False
        self._output = OutputQueue(server.config.limits.output_bytes)
        self._writing_paused = False  # the socket buffer is above WRITE_HIGH
        self._seen_full = False  # the queue's state the connection last acted on
        # cleared while the output queue is full; None (not an Event) while there is room,
        # as nearly always: an idle connection holds no Event and no waiter deque
        self._output_room: asyncio.Event | None = None
        self._unsent_owner: Session | None = None  # whose messages are kept once closing
        self.detached = False  # lost while resumable: its session waits for a resumption
        self._unwritten: list[Callable[[], None]] = []  # confirms of bytes not in the kernel
        # stream management (XEP-0198): what the client has not acknowledged, and the id it
        # may resume with (then a dropped connection detaches its session instead of ending it)
        self.sm: sm.Outbound | None = None
        self.sm_id: str | None = None
        # stanzas the stream counted (its h) that were not routed yet: a connection that drops
        # mid-chunk leaves some unrouted, and a resumption's h must not pass them
        self.unrouted = 0

    # ---- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's does not subclass asyncio.Transport: no isinstance)
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.io = StreamTLS(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.info["ip"] = self._ip = peer[0] if peer else None
        if not self.server.admit(self._ip):
            # XEP-0205: refuse at accept, before any TLS or parsing work is spent on it.
            self._refused = self._closing = True
            log.info(
                "refused %s: over %d connections from one IP",
                self.peer,
                self.server.config.limits.connections_per_ip,
            )
            transport.close()
            return
        self.server.connections.add(self)
        deadlines = self.server.config.deadlines
        self._arm("negotiation", deadlines.negotiation, self._timeout)
        self._last_read = self._now()
        self.server.idle_sweep.watch()  # [deadlines] idle: see idle_check
        self._arm("hibernate", self.server.config.deadlines.hibernate, self._hibernate_check)
        log.info("connect %s on %s", self.peer, self.info["listener"])
        if self.direct_tls:
            self._begin_tls()
        else:
            self._refuse_if_banned()

    def data_received(self, data: bytes) -> None:
        if self._closing:  # refused, or lingering after a close: input is discarded
            return
        if "hibernate" not in self._timers:
            self._arm("hibernate", self.server.config.deadlines.hibernate, self._hibernate_check)
        # every read counts as activity for the idle deadline; only a metered peer is charged
        now, last_read = self._now(), self._last_read
        self._last_read = now
        if self.metered:
            limits = self.server.config.limits
            self._read_tokens = min(
                limits.read_burst, self._read_tokens + (now - last_read) * limits.read_rate
            )
            self._charge(READ_COST)
        assert self.io is not None
        if self.io.tls_active:
            try:
                data = self.io.data_received(data)  # the alert of a failed handshake goes out
            except ssl.SSLError as exc:
                log.info("tls failed %s: %s", self.peer, exc.reason or exc)
                self._abort()
                return
            if "handshake" in self._timers and self.io.handshake_done:
                self._tls_ready()
            if self.io.peer_closed:
                self._abort()
                return
            if not data:
                return
        if self.metered:
            self._charge(len(data))  # the stream's bytes: TLS framing is in READ_COST
        self._inbox.append(data)
        if len(self._inbox) > MAX_QUEUED_CHUNKS:
            self._pause("backlog")
        if self._worker is None:
            # handled here and now; a task carries on only from an await that really waits
            work = self._work()
            if not self._eager:
                self._worker = asyncio.ensure_future(work)
                return
            holding = hold_writes()  # the stanzas this read sends each stream go out together
            try:
                self._worker = eager.start(work)
            finally:
                if holding:
                    release_writes()

    def _charge(self, cost: int) -> None:
        """Past the rate, reading pauses as long as repaying the debt takes (no loss)."""
        self._read_tokens -= cost
        if self._read_tokens < 0 and "rate" not in self._pauses:
            self._pause("rate")
            delay = -self._read_tokens / self.server.config.limits.read_rate
            self._loop.call_later(delay, self._resume, "rate")

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        # dropped by the peer (not closed by either side's stream): resumable (XEP-0198)
        self.detached = not self._closing and self.sm_id is not None
        self.server.release(self._ip)
        self._closing = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._inbox.clear()
        self._writing_paused = True  # nothing more can be written
        self._unwritten.clear()  # never confirmed: those stay in the store
        self._keep_unsent()
        self.server.connections.discard(self)
        self.server.trimmer.request()
        if self._worker is not None and self._worker is not asyncio.current_task():
            self._worker.cancel()
        self.kind.lost(self)
        # what only this stream used goes now, not at the collector's next full pass (the
        # connection, its session and its parser refer to one another): Expat, and the TLS
        # objects, the largest part of a connection
        self.stream.release()
        self.io.session = None
        log.info("disconnect %s%s", self.peer, f" ({exc})" if exc else "")

    # ---- the Link protocol used by sessions and the router -------------------------------

    def send_element(self, element: Element, confirm: Callable[[], None] | None = None) -> None:
        # a message with a confirm is in the store until confirmed: never kept a second time
        keep = element.tag == MESSAGE and confirm is None
        if self.sm is not None:
            self._send_managed(element, confirm)
            return
        if self._closing:  # the session is not unbound yet: its messages are kept, not lost
            if keep and self._unsent_owner is not None:
                self.server.router.keep_offline(element, self._unsent_owner)
            return
        data = serialize(element)
        if (
            not (self._output or self._writing_paused or self._unwritten or confirm)
            and not self.transport.is_closing()
        ):
            # nothing waits and the socket buffer has room: what push() + _pump() would do,
            # together with what else this stream gets while the current read is handled
            self.io.hold(data)
            return
        self._output.push(
            data,
            message=element if keep else None,
            key=presence_key(element) if element.tag == PRESENCE else None,
            confirm=confirm,
        )
        self._pump()

    def _send_managed(self, element: Element, confirm: Callable[[], None] | None) -> None:
        """With stream management a stanza stays queued until acknowledged: written now, or
        on resumption when the connection is gone; confirmed (deleted from the store) on ack."""
        assert self.sm is not None
        data = serialize(element)
        # a stored message (with a confirm) stays in the store: nothing more to keep of it
        ask = self.sm.push(sm.Unacked(data, element if confirm is None else None, confirm))
        if self.sm.over:
            self._sm_overflow()
            return
        if self._closing:
            return
        self._output.push(data)  # never coalesced: the client counts every stanza it gets
        if ask:
            self._output.push(sm.request(), stream_level=True)
        self._pump()

    def _sm_overflow(self) -> None:
        """A client that reads but never acknowledges: closed, its unacked messages offline."""
        assert self.sm is not None
        limits = self.server.config.limits
        text = (
            f"more than {limits.sm_unacked} stanzas or {limits.sm_unacked_bytes} bytes "
            "not acknowledged (limits.sm_unacked)"
        )
        log.info("%s acknowledges nothing: closing", self.peer)
        if self.detached:
            self.server.resumptions.expire(self)
        else:
            self.close(StreamError("policy-violation", text))

    def sm_acked(self, h: int) -> None:
        """The client's <a h=.../>: what it covers is delivered."""
        assert self.sm is not None
        for entry in self.sm.ack(h):  # HandledCountTooHigh: the caller fails the stream
            if entry.confirm is not None:
                entry.confirm()

    def sm_end(self, session: Session) -> None:
        """The session ends for good: the messages the client never acknowledged are kept
        offline, its iq requests bounce (a stored message is still in the store)."""
        if self.sm is None:
            return
        router = self.server.router
        for entry in self.sm.take_all():
            element = entry.element
            if element is None:
                continue
            if element.tag == MESSAGE and keeps_offline(element):
                router.keep_offline(element, session)
            elif element.tag == IQ and element.get("type") in ("get", "set"):
                router.bounce(element, StanzaError("service-unavailable", "the session ended"))

    def sm_resend(self) -> None:
        """After a resumption: the stanzas the client did not acknowledge, again, in order."""
        assert self.sm is not None
        for entry in self.sm.unacked():
            self._output.push(entry.data)
        self._pump()

    @property
    def closing(self) -> bool:
        """The stream is closed on our side (or refused): nothing more is read or written."""
        return self._closing

    @property
    def output_full(self) -> bool:
        """No room for more stanzas: the queue is full, or the stream is closing (a detached
        session's stanzas wait in its stream-management queue, for a resumption)."""
        return self._output.full or (self._closing and not self.detached)

    @property
    def output_backlog(self) -> int:
        """Bytes of stanzas waiting for room in the socket buffer."""
        return self._output.size

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._pump()

    def close(self, error: StreamError | None = None) -> None:
        """Server-initiated close: stream error (if any), close tag, then the socket."""
        if self.detached:  # replaced, or shutdown: the session ends without its connection
            self.server.resumptions.expire(self)
            return
        if self._closing:
            return
        if error is not None:
            actions_ = self.stream.fail(error)
        else:
            actions_ = [actions.Send(b"</stream:stream>"), actions.Close()]
        for action in actions_:
            if isinstance(action, actions.Send):
                self._write(action.data)
            elif isinstance(action, actions.Close):
                self._close_transport()

    # ---- processing ----------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            while self._inbox and not self._closing:
                chunk = self._inbox.pop(0)
                await self.execute(self.stream.receive(chunk))
                if self._ban_pending:
                    self._refuse_if_banned()
                if len(self._inbox) <= MAX_QUEUED_CHUNKS // 2:
                    self._resume("backlog")
                self._stanza_deadline()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connection %s failed", self.peer)
            await self.execute(self.stream.fail(StreamError("internal-server-error")))
        finally:
            self._worker = None

    async def execute(self, todo: list[actions.Action]) -> None:
        self.unrouted += sum(isinstance(action, actions.StanzaIn) for action in todo)
        for action in todo:
            if self._closing:
                return
            match action:
                case actions.Send(data):
                    if self.sm is not None and data.startswith(STANZA_STARTS):
                        # a stanza the stream answered itself (an iq result, a stanza error):
                        # the client counts it, so the server's count must too
                        self.sm.push(sm.Unacked(data, None, None))
                    self._write(data)
                case actions.StartTLS():
                    self._begin_tls()
                case actions.Close(error):
                    if error is not None:
                        log.info("stream error to %s: %s", self.peer, error)
                    self._close_transport()
                case _:
                    await self.kind.execute(self, action)

    async def output_room(self) -> bool:
        """Wait while the peer does not read its output (it asks no more meanwhile); False
        when the stream closed in the meantime."""
        room = self._output_room
        if room is not None:
            await room.wait()
        return not self._closing

    def negotiated(self) -> None:
        """The stream is ready: the negotiation deadline no longer runs."""
        self._cancel("negotiation")

    def auth_failed(self) -> None:
        """A failed authentication counts against the peer's IP (XEP-0205 / A-03)."""
        self.server.note_auth_failure(self._ip)
        self._ban_pending = self.server.banned_until(self._ip) is not None

    def refused_as_banned(self) -> bool:
        """An earlier failure on this stream banned its IP: no more guesses here."""
        return self._ban_pending and self._refuse_if_banned()

    # ---- TLS -----------------------------------------------------------------------------

    def _begin_tls(self) -> None:
        assert self.io is not None
        self.io.start_tls(
            self.tls_context, session_class=getattr(self.kind, "tls_session", TLSSession)
        )
        self._arm("handshake", self.server.config.deadlines.tls_handshake, self._abort)

    def _tls_ready(self) -> None:
        assert self.io is not None
        self._cancel("handshake")
        info = self.io.info()
        assert info is not None
        self.info.update(tls_version=info.version, cipher=info.cipher, sni=info.server_name)
        log.info("tls %s %s %s", self.peer, info.version, info.cipher)
        if self._refuse_if_banned():
            return
        # a kind may say what its stream needs of the session (s2s: the peer's chain)
        established = getattr(self.kind, "tls_established", None)
        if established is not None:
            actions = established(self)
        else:
            actions = self.stream.tls_established(self.io.channel_bindings())
        if actions:  # pragma: no cover - tls_established sends nothing today
            self.server.spawn(self.execute(actions))

    def _refuse_if_banned(self) -> bool:
        """A banned IP gets <policy-violation/> naming when to retry (A-03)."""
        until = self.server.banned_until(self._ip)
        if until is None:
            return False
        when = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
        text = f"too many failed authentications from {self._ip}; retry after {when}"
        self.close(StreamError("policy-violation", text))
        return True

    # ---- output and teardown -------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Stream-level output (negotiation, stanza and stream errors): behind queued stanzas,
        never before them; straight out when nothing waits (so <proceed/> precedes TLS)."""
        if self._output:
            self._output.push(data, stream_level=True)
            self._pump()
        elif self.io is not None and not self.transport.is_closing():
            self.io.write(data)  # queued inside TLS until its handshake is done

    def _pump(self) -> None:
        """Move queued stanzas into the socket buffer while it has room."""
        while self._output and not self._writing_paused and not self.transport.is_closing():
            data, confirm = self._output.pop_confirmed()
            self.io.write(data)  # may call pause_writing() synchronously
            if confirm is not None:
                self._unwritten.append(confirm)
        if self._unwritten:
            self._confirm_written()
        if self._output.full != self._seen_full:
            self._output_full_changed()

    def _confirm_written(self) -> None:
        """Confirm what the kernel holds: a crash of this process no longer loses it (the
        kernel sends its socket buffer when the process dies); asyncio's buffer would."""
        self._cancel("written")
        if not self._unwritten or self._closing:
            return
        if self.transport.get_write_buffer_size() > 0:
            self._arm("written", WRITTEN_CHECK, self._confirm_written)
            return
        confirms, self._unwritten = self._unwritten, []
        for confirm in confirms:
            confirm()

    def _output_full_changed(self) -> None:
        self._seen_full = self._output.full
        if self._output.full:
            if self._output_room is None:
                self._output_room = asyncio.Event()
            self._pause("output")
            if "output" not in self._timers:
                self._arm("output", self.server.config.deadlines.output_stall, self._stalled)
            return
        self._open_room()
        self._cancel("output")
        self._resume("output")
        if self.session is not None:
            self.server.router.drained(self.session)

    def _open_room(self) -> None:
        room, self._output_room = self._output_room, None
        if room is not None:
            room.set()

    def _stalled(self) -> None:
        self._timers.pop("output", None)
        stall = self.server.config.deadlines.output_stall
        log.info("output to %s full for %ss: closing", self.peer, stall)
        self._keep_unsent()
        self.close(StreamError("policy-violation", f"output not read for {stall:g} seconds"))

    def _keep_unsent(self) -> None:
        """Messages never written go to offline storage; stream-level bytes go out as they
        are small and carry the closing stream error."""
        messages, raw = self._output.clear()
        self._seen_full = False
        self._cancel("output")
        self._open_room()  # a worker waiting for room wakes up and sees the close
        self._unsent_owner = self._unsent_owner or self.session
        if self._unsent_owner is not None:
            for message in messages:
                self.server.router.keep_offline(message, self._unsent_owner)
        else:  # a link with no local session behind it (a component): the senders learn
            for message in messages:
                text = "the stream closed before this was written; retry later"
                err = StanzaError("remote-server-timeout", text, type="wait")
                self.server.router.bounce(message, err)
        if raw and self.io is not None and not self.transport.is_closing():
            self.io.write(b"".join(raw))

    def _close_transport(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._keep_unsent()
        if self.session is not None:  # not resumable: unacknowledged messages go offline now
            self.sm_end(self.session)
        if self.io is not None:
            self.io.close_notify()
        if self.transport is not None:
            if self.transport.can_write_eof():
                # Lingering close: half-close and keep reading (discarding) for a moment.
                # Closing a socket with unread input sends a RST, and a RST makes the peer's
                # kernel drop our stream error before the peer reads it.
                try:
                    self.transport.write_eof()
                except OSError as exc:
                    # The peer reset before we noticed (ENOTCONN, EPIPE, ECONNRESET): an
                    # ordinary end of a connection, with nobody left to linger for.
                    log.debug("close %s: peer already gone (%s)", self.peer, exc.strerror)
                    self._abort()
                    return
                self._lingering = True
                self._arm("linger", LINGER, self._abort)
            else:
                self.transport.close()

    @property
    def lingering(self) -> bool:
        """Closed on our side with everything written: only waiting for the peer's FIN."""
        return self._lingering and (
            self.transport is None or self.transport.get_write_buffer_size() == 0
        )

    def _abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    # ---- flow control --------------------------------------------------------------------

    def _pause(self, reason: str) -> None:
        if not self._pauses and self.transport is not None and not self._closing:
            self.transport.pause_reading()
        if reason not in self._pauses:
            self._pauses += (reason,)

    def _resume(self, reason: str) -> None:
        if reason not in self._pauses:
            return
        self._pauses = tuple(r for r in self._pauses if r != reason)
        if not self._pauses and self.transport is not None and not self._closing:
            self.transport.resume_reading()

    # ---- deadlines -----------------------------------------------------------------------

    def _now(self) -> float:
        return self._loop.time()

    def _arm(self, name: str, delay: float, callback) -> None:
        self._cancel(name)
        self._timers[name] = self._loop.call_later(delay, callback)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
            if not self._timers:  # an emptied dict keeps its table (120 bytes); {} has none
                self._timers = {}

    def _timeout(self) -> None:
        self.close(StreamError("connection-timeout"))

    def idle_check(self, now: float, idle: float) -> None:
        """The idle sweep's visit (net/idle.py): a stream silent for `idle` seconds is closed."""
        if not self._closing and now - self._last_read >= idle:
            self._timeout()

    def _hibernate_check(self) -> None:
        """Idle for [deadlines] hibernate: the stream drops its parser (re-armed by a read), and
        a managed stream asks its client to acknowledge what it has not yet."""
        remaining = self._last_read + self.server.config.deadlines.hibernate - self._now()
        if remaining > 0:
            self._arm("hibernate", remaining, self._hibernate_check)
            return
        self._cancel("hibernate")  # fired: only forgotten, the last timer of an idle stream
        if self._worker is not None or self._inbox:
            # still at what it read (a store call queued behind a burst of logins): try again
            # later, or the stream would keep its parser until its next read
            self._arm("hibernate", self.server.config.deadlines.hibernate, self._hibernate_check)
            return
        if self.sm is not None and not self._closing and self.sm.quiet():
            self._output.push(sm.request(), stream_level=True)  # answered, the queue empties
            self._pump()
        if self.stream.hibernate():
            self.server.trimmer.request()

    def _stanza_deadline(self) -> None:
        """A stanza must complete within the deadline once its first byte arrived (X-12)."""
        if self.stream.partial:
            if "stanza" not in self._timers:
                self._arm("stanza", self.server.config.deadlines.stanza, self._timeout)
        else:
            self._cancel("stanza")


class C2SKind:
    """Client streams: account lookups for SASL, authentication, resource binding, and the
    stanzas of a bound client, handed to the router."""

    def listener(self, direct_tls: bool) -> str:
        return "c2s-direct-tls" if direct_tls else "c2s"

    def new_stream(self, server: Server, direct_tls: bool) -> Stream:
        return c2s.C2SStream(server.c2s_settings, tls=direct_tls)

    async def execute(self, conn: StreamConnection, action: actions.Action) -> None:
        server, stream = conn.server, conn.stream
        assert isinstance(stream, c2s.C2SStream)
        match action:
            case actions.StanzaIn(element):  # first: nearly every action, once bound
                if await conn.output_room():  # a peer that does not read asks no more
                    await server.router.route(element, conn.session)
                    conn.unrouted -= 1
            case actions.LookupAccount(jid) as request:
                if conn.refused_as_banned():
                    return
                account = await server.storage.get_account(str(jid))
                await conn.execute(stream.account(request, account))
            case actions.DeriveKey(hash_name, salt, iterations, password) as request:
                salted = await kdf.pbkdf2(hash_name, password, salt, iterations)
                await conn.execute(stream.derived(request, salted))
            case actions.AuthFailed(condition, counts):
                log.info("authentication failed %s: %s", conn.peer, condition)
                if counts:
                    conn.auth_failed()
                server.host.hooks.emit("auth/failed", stream.mechanism or "none")
            case actions.Authenticated(jid, mechanism, legacy_name):
                conn.info["mechanism"] = mechanism
                server.host.hooks.emit("auth/succeeded", mechanism)
                log.info("authenticated %s as %s with %s", conn.peer, jid, mechanism)
                if legacy_name:
                    log.warning(
                        "%s typed %s and logged in as %s: an account stored under the "
                        "pre-PRECIS rule, which casefolded names (RFC 7622 keeps them apart)",
                        conn.peer,
                        legacy_name,
                        jid,
                    )
            case actions.BindRequest(resource) as request:
                binding = asyncio.ensure_future(server.bind(conn, resource))
                try:
                    conn.session = await asyncio.shield(binding)
                except asyncio.CancelledError:
                    # The connection went away while the bind awaited storage: the session
                    # it registers must not outlive it (it would take the peer's messages).
                    binding.add_done_callback(lambda done: _unbind_orphan(server, done))
                    raise
                except StanzaError as err:
                    await conn.execute(stream.bind_failed(request, err))
                    return
                conn.negotiated()
                log.info("bound %s to %s", conn.peer, conn.session.jid)
                # the bind result, then the stanzas the client pipelined behind the request
                await conn.execute(stream.bound(request, conn.session.jid))
            case actions.SmEnable(resume):
                limits = server.config.limits
                conn.sm = sm.Outbound(limits.sm_unacked, limits.sm_unacked_bytes)
                if conn.session is not None:
                    conn.session.managed = True
                window = server.config.deadlines.resume
                if resume and window > 0:
                    conn.sm_id = tokens.token_urlsafe(18)
                    server.resumptions.register(conn)
                conn._write(sm.enabled(conn.sm_id, math.ceil(window)))
            case actions.SendConfirming(data):
                # the messages this h covers went out already; their commits may still run
                await server.router.pending.durable(conn.session)
                conn._write(data)
            case actions.SmAck(h):
                try:
                    conn.sm_acked(h)
                except sm.HandledCountTooHigh as exc:
                    await conn.execute(stream.fail(exc.error))
            case actions.ResumeRequest() as request:
                await self._resume(conn, stream, request)

    async def _resume(
        self, conn: StreamConnection, stream: c2s.C2SStream, request: actions.ResumeRequest
    ) -> None:
        """XEP-0198 5: only the same account resumes (T-12); the old connection, if the
        server has not noticed it is gone yet, is dropped without ending the session."""
        server = conn.server
        old = server.resumptions.get(request.previd)
        if old is None or old.session is None or old.session.jid.bare != stream.jid:
            log.info(
                "resumption refused %s: unknown or expired id, or another account's", conn.peer
            )
            await conn.execute(stream.resume_failed(request, "item-not-found"))
            return
        # the h in <resumed/> covers what the old stream routed: once it is committed
        while server.router.pending.unlanded(old.session):
            await server.router.pending.durable(old.session)
            if server.resumptions.get(request.previd) is not old or old.session is None:
                await conn.execute(stream.resume_failed(request, "item-not-found"))
                return
        assert old.sm is not None and isinstance(old.stream, c2s.C2SStream)
        try:
            old.sm_acked(request.h)
        except sm.HandledCountTooHigh as exc:
            await conn.execute(stream.fail(exc.error))
            return
        server.resumptions.take(old)
        session, old.session = old.session, None
        conn.sm, old.sm = old.sm, None
        conn.sm_id, old.sm_id = old.sm_id, None
        inbound = old.stream.sm_in
        assert inbound is not None
        # what it counted but never routed is not handled: the client sends it again
        inbound.handled = (inbound.handled - old.unrouted) % sm.WRAP
        old._abort()  # a stale connection of the same client: nothing more goes to it
        session.link = conn
        conn.session = session
        server.resumptions.register(conn)
        conn.negotiated()
        log.info("resumed %s as %s", conn.peer, session.jid)
        await conn.execute(stream.resumed(request, session.jid, inbound))
        conn.sm_resend()
        server.router.drained(session)  # messages kept offline meanwhile, if any

    def lost(self, conn: StreamConnection) -> None:
        if conn.session is None:
            return
        if conn.detached:  # its session waits for a resumption, presence unchanged
            conn.server.resumptions.detach(conn)
            return
        conn.server.resumptions.take(conn)
        session, conn.session = conn.session, None
        conn.sm_end(session)
        conn.server.spawn(conn.server.unbind(session))


class Resumptions:
    """Stream-management sessions that may be resumed, by id; a detached one (its
    connection dropped) waits `[deadlines] resume`, then ends like any session."""

    def __init__(self, window: Callable[[], float]) -> None:
        self._window = window
        self._by_id: dict[str, StreamConnection] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def register(self, conn: StreamConnection) -> None:
        assert conn.sm_id is not None
        self._by_id[conn.sm_id] = conn

    def get(self, sm_id: str) -> StreamConnection | None:
        return self._by_id.get(sm_id)

    def take(self, conn: StreamConnection) -> None:
        """No longer resumable under its id (resumed, or ended)."""
        if conn.sm_id is not None and self._by_id.get(conn.sm_id) is conn:
            del self._by_id[conn.sm_id]
            timer = self._timers.pop(conn.sm_id, None)
            if timer is not None:
                timer.cancel()

    def detach(self, conn: StreamConnection) -> None:
        assert conn.sm_id is not None
        log.info("detached %s: resumable for %gs", conn.session.jid, self._window())
        loop = asyncio.get_running_loop()
        self._timers[conn.sm_id] = loop.call_later(self._window(), self.expire, conn)

    def expire(self, conn: StreamConnection) -> None:
        """Never resumed: the session ends, its unacknowledged messages go offline."""
        self.take(conn)
        if conn.session is not None:
            log.info("resumption window of %s over: session ended", conn.session.jid)
            conn.detached = False
            C2S.lost(conn)

    def expire_all(self) -> None:
        for conn in list(self._by_id.values()):
            if conn.detached:
                self.expire(conn)


def _unbind_orphan(server: Server, binding: asyncio.Future[Session]) -> None:
    if not binding.cancelled() and binding.exception() is None:
        server.spawn(server.unbind(binding.result()))


C2S = C2SKind()


class C2SConnection(StreamConnection):
    """A client connection."""

    __slots__ = ()

    def __init__(self, server: Server, tls_context: ssl.SSLContext, direct_tls: bool) -> None:
        super().__init__(server, C2S, tls_context, direct_tls)
