"""XEP-0198 stream management, without I/O: the counters, the queue of stanzas sent and not yet
acknowledged, and the elements of the protocol.

Every stanza counts, both ways, and counters wrap at 2^32 (XEP-0198 section 4). `Outbound` holds
what was sent to the client until its `<a h=.../>` covers it: on resumption it is sent again,
and when the session ends for good its messages go offline (nothing acknowledged is lost,
nothing unacknowledged vanishes). An `h` that acknowledges more than was sent is the client's
error: `handled-count-too-high`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from vines_server.xmpp import ns
from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.stanza import make, serialize

WRAP = 2**32  # h is an xs:unsignedInt
REQUEST_EVERY = 5  # stanzas sent between two of the server's <r/>


def parse_h(text: str | None) -> int:
    """The `h` attribute: an unsigned 32-bit integer, or the client's stream is invalid."""
    if text is None or not text.isascii() or not text.isdigit() or int(text) >= WRAP:
        raise StreamError("invalid-xml", f"h must be an unsigned 32-bit integer, not {text!r}")
    return int(text)


def too_high(h: int, sent: int) -> StreamError:
    return StreamError(
        "undefined-condition",
        f"h={h} acknowledges more than the {sent} stanzas sent",
        app=(ns.SM, "handled-count-too-high"),
    )


class HandledCountTooHigh(Exception):
    def __init__(self, h: int, sent: int) -> None:
        super().__init__(h, sent)
        self.error = too_high(h, sent)


@dataclass(slots=True)
class Unacked:
    data: bytes  # as sent, to send again on resumption
    # a message to keep offline, or an iq request to bounce, if it is never acknowledged
    element: Element | None
    confirm: Callable[[], None] | None  # a stored message: deleted from the store once acked


class Inbound:
    """The server's `h`: stanzas received from the client and handled."""

    __slots__ = ("handled",)  # one per managed session, like Outbound

    def __init__(self) -> None:
        self.handled = 0

    def count(self) -> None:
        self.handled = (self.handled + 1) % WRAP


class Outbound:
    """Stanzas sent to the client and not yet acknowledged, bounded in stanzas and bytes."""

    # one per managed session, 10 000 idle at a time: no per-instance dict (issue 14)
    __slots__ = ("_queue", "_since_request", "max_bytes", "max_stanzas", "sent", "size")

    def __init__(self, max_stanzas: int, max_bytes: int) -> None:
        self.max_stanzas = max_stanzas
        self.max_bytes = max_bytes
        self.sent = 0  # stanzas sent, modulo 2^32
        self.size = 0  # bytes of the unacknowledged ones
        # () while everything is acknowledged, as on an idle session: no 760-byte deque block
        self._queue: deque[Unacked] | tuple[()] = ()
        self._since_request = 0

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, entry: Unacked) -> bool:
        """One more stanza sent; True when it is time to ask the client for an ack."""
        if not self._queue:
            self._queue = deque()
        self._queue.append(entry)
        self.sent = (self.sent + 1) % WRAP
        self.size += len(entry.data)
        self._since_request += 1
        if self._since_request >= REQUEST_EVERY:
            self._since_request = 0
            return True
        return False

    def quiet(self) -> bool:
        """The stream went quiet: True when stanzas sent since the last <r/> still wait for an
        ack, so the caller asks once more. Without it, the last few stanzas of a conversation
        (fewer than REQUEST_EVERY) would stay queued, in memory and to be sent again on
        resumption, until more traffic came. Prosody and ejabberd ask after every stanza."""
        if self._queue and self._since_request:
            self._since_request = 0
            return True
        return False

    @property
    def over(self) -> bool:
        """More unacknowledged than the limits allow: the client reads but never acks."""
        return len(self._queue) > self.max_stanzas or self.size > self.max_bytes

    def ack(self, h: int) -> list[Unacked]:
        """The client handled `h` stanzas in all: returns the ones this acknowledges."""
        acked_before = (self.sent - len(self._queue)) % WRAP
        newly = (h - acked_before) % WRAP
        if newly > len(self._queue):
            raise HandledCountTooHigh(h, self.sent)
        out = [self._queue.popleft() for _ in range(newly)]
        if not self._queue:
            self._queue = ()
        self.size -= sum(len(e.data) for e in out)
        return out

    def unacked(self) -> list[Unacked]:
        return list(self._queue)

    def take_all(self) -> list[Unacked]:
        """Empty the queue (the session ends): what was never acknowledged."""
        out = list(self._queue)
        self._queue = ()
        self.size = 0
        return out


# ---- the protocol's elements ---------------------------------------------------------------


def feature() -> Element:
    return make(ns.q(ns.SM, "sm"))


def enabled(sm_id: str | None, max_seconds: int) -> bytes:
    attrs = {"id": sm_id, "resume": "true", "max": str(max_seconds)} if sm_id else {}
    return serialize(make(ns.q(ns.SM, "enabled"), attrs))


def failed(condition: str, h: int | None = None, text: str | None = None) -> bytes:
    attrs = {"h": str(h)} if h is not None else {}
    children = [make(ns.q(ns.STANZAS_ERR, condition))]
    if text:
        children.append(make(ns.q(ns.STANZAS_ERR, "text"), text=text))
    return serialize(make(ns.q(ns.SM, "failed"), attrs, children=children))


def answer(h: int) -> bytes:
    return serialize(make(ns.q(ns.SM, "a"), {"h": str(h)}))


def request() -> bytes:
    return serialize(make(ns.q(ns.SM, "r")))


def resumed(previd: str, h: int) -> bytes:
    return serialize(make(ns.q(ns.SM, "resumed"), {"previd": previd, "h": str(h)}))
