"""One connection's stanza queue: what waits for room in the socket buffer (design decision 12).

Stanzas are serialised when queued, so the queue counts exactly the bytes it holds. It is full
at `limit` bytes and stays full until it drains to half of that (no flapping at the edge). While
it is full the router sends messages to offline storage and bounces iqs; presence keeps coming,
but a queued presence from the same sender (and of the same kind) is replaced by the newer one,
so a contact costs at most one queued presence of each kind however often it changes.

No I/O here: the connection pops entries into its socket as the socket drains.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

__all__ = ["OutputQueue", "presence_key"]

PresenceKey = tuple[str | None, str]


def presence_key(presence: Element) -> PresenceKey:
    """Presences with the same key supersede each other: available and unavailable from one
    full JID are one state; each subscription type is its own request."""
    ptype = presence.get("type")
    return presence.get("from"), "state" if ptype in (None, "unavailable") else ptype


@dataclass(slots=True)
class _Entry:
    data: bytes
    message: Element | None  # kept so that an unsent message can go to offline storage
    key: PresenceKey | None
    stream_level: bool  # written by the stream itself (a stanza error, a stream error)
    confirm: Callable[[], None] | None = None  # told once the bytes reach the socket


class OutputQueue:
    __slots__ = ("_entries", "_presences", "full", "limit", "size")  # one per connection

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0  # bytes queued
        self.full = False
        # () while empty, as an idle session's queue is: an empty deque still holds a
        # 760-byte block, 7 MiB over 10 000 idle sessions
        self._entries: deque[_Entry] | tuple[()] = ()
        self._presences: dict[PresenceKey, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def push(
        self,
        data: bytes,
        *,
        message: Element | None = None,
        key: PresenceKey | None = None,
        stream_level: bool = False,
        confirm: Callable[[], None] | None = None,
    ) -> None:
        """Queue serialised bytes; a presence (`key`) replaces a queued one with the same key.
        `confirm` is handed back by pop() with the bytes (a stored message, deleted from the
        store once it is written); a message that has one is not kept offline again."""
        old = self._presences.get(key) if key is not None else None
        if old is not None:
            self.size += len(data) - len(old.data)
            old.data = data
        else:
            entry = _Entry(data, message, key, stream_level, confirm)
            if not self._entries:
                self._entries = deque()
            self._entries.append(entry)
            self.size += len(data)
            if key is not None:
                self._presences[key] = entry
        self._update()

    def pop(self) -> bytes:
        return self.pop_confirmed()[0]

    def pop_confirmed(self) -> tuple[bytes, Callable[[], None] | None]:
        """The next bytes, with what to tell once they are written."""
        entry = self._entries.popleft()
        if not self._entries:
            self._entries = ()
        self.size -= len(entry.data)
        if entry.key is not None and self._presences.get(entry.key) is entry:
            del self._presences[entry.key]
        self._update()
        return entry.data, entry.confirm

    def clear(self) -> tuple[list[Element], list[bytes]]:
        """Empty the queue: returns its messages (to keep offline) and its stream-level bytes
        (to write before the stream closes); queued presences and iqs are dropped."""
        messages = [e.message for e in self._entries if e.message is not None]
        raw = [e.data for e in self._entries if e.stream_level]
        self._entries = ()
        self._presences.clear()
        self.size = 0
        self._update()
        return messages, raw

    def _update(self) -> None:
        if self.size >= self.limit:
            self.full = True
        elif self.size <= self.limit // 2:
            self.full = False
