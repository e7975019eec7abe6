"""The presence board: pure state, no Textual and no I/O.

Events come in (from the server's presence feed, or from polling the online users list), the
board updates its rows (one per bare JID, each with its resources) and says what changed, as
`Change` objects: the dashboard updates those rows only and logs the changes, and
`vinesctl presence --watch` prints the same changes as lines or JSON.

    board = Board()
    board.begin_snapshot()
    board.add_snapshot(events)          # any number of times
    changes = board.end_snapshot()      # the diff against what the board showed before
    changes = board.apply(event)        # a delta

`FeedTracker` checks a feed's sequence numbers (a gap means "start a new feed"), `LoadHistory`
keeps the load the server publishes for sparklines, and `EventLog` is a bounded ring buffer.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# most available first: the order used to pick a user's "best" show and to sort by show
SHOW_ORDER = {"chat": 0, "": 1, "away": 2, "xa": 3, "dnd": 4}
SHOW_LABEL = {"": "online", "chat": "chat", "away": "away", "xa": "xa", "dnd": "dnd"}


def now() -> datetime:
    return datetime.now(UTC)


def split_jid(jid: str) -> tuple[str, str]:
    """'user@domain/res' -> ('user@domain', 'res')."""
    bare, _, resource = jid.partition("/")
    return bare.lower(), resource


def client_name(node: str) -> str:
    """A caps node URI as a short client name: 'https://gajim.org' -> 'gajim.org',
    'http://slixmpp.com/ver/1.17' -> 'slixmpp.com'."""
    if not node:
        return ""
    text = node.split("://", 1)[-1]
    return text.split("/", 1)[0] or node


@dataclass(frozen=True)
class PresenceEvent:
    """One presence of one session (full JID), as forwarded by the feed or read from a poll."""

    jid: str
    available: bool = True
    show: str = ""  # '' means plain available
    status: str = ""
    priority: int = 0
    client: str = ""  # caps node (XEP-0115), or ''
    stamp: datetime | None = None  # when it happened (the feed's delay stamp)

    @property
    def bare(self) -> str:
        return split_jid(self.jid)[0]

    @property
    def resource(self) -> str:
        return split_jid(self.jid)[1]


@dataclass
class Resource:
    name: str
    show: str = ""
    status: str = ""
    priority: int = 0
    client: str = ""
    since: datetime = field(default_factory=now)  # when this session became available
    changed: datetime = field(default_factory=now)  # its last presence change

    def same_presence(self, other: Resource) -> bool:
        return (self.show, self.status, self.priority, self.client) == (
            other.show,
            other.status,
            other.priority,
            other.client,
        )


@dataclass
class Row:
    """One user: a bare JID and its available resources."""

    bare: str
    resources: dict[str, Resource] = field(default_factory=dict)
    _text: str | None = field(default=None, repr=False, compare=False)

    def touch(self) -> None:
        """Its resources changed: forget the cached search text."""
        self._text = None

    @property
    def best(self) -> Resource | None:
        """The resource that speaks for the user: highest priority, then most available."""
        if not self.resources:
            return None
        return min(
            self.resources.values(),
            key=lambda r: (-r.priority, SHOW_ORDER.get(r.show, 5), r.since, r.name),
        )

    @property
    def show(self) -> str:
        best = self.best
        return best.show if best else ""

    @property
    def status(self) -> str:
        best = self.best
        return best.status if best else ""

    @property
    def client(self) -> str:
        names = sorted({client_name(r.client) for r in self.resources.values() if r.client})
        return ", ".join(names)

    @property
    def since(self) -> datetime | None:
        return min((r.since for r in self.resources.values()), default=None)

    def cells(self, clock: datetime | None = None) -> tuple[str, str, str, str, str, str]:
        """What the table shows: JID, resources, show, status, client, since."""
        since = self.since
        return (
            self.bare,
            ", ".join(sorted(self.resources)) or "-",
            SHOW_LABEL.get(self.show, self.show),
            self.status,
            self.client,
            format_since(since, clock) if since else "",
        )

    def text(self) -> str:
        """Everything a search looks at, lower case (cached until `touch()`)."""
        if self._text is None:
            parts = [self.bare, SHOW_LABEL.get(self.show, self.show)]
            for r in self.resources.values():
                parts += [r.name, r.status, r.client, SHOW_LABEL.get(r.show, r.show)]
            self._text = " ".join(parts).lower()
        return self._text


def format_since(when: datetime, clock: datetime | None = None) -> str:
    """'12:03:04' today, '2026-11-23 12:03' earlier (UTC)."""
    clock = clock or now()
    when = when.astimezone(UTC)
    if when.date() == clock.astimezone(UTC).date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Change:
    """What happened to one session: it came online, went offline, or changed its presence."""

    kind: str  # online | offline | changed
    jid: str  # full JID
    show: str = ""
    status: str = ""
    priority: int = 0
    client: str = ""
    time: datetime = field(default_factory=now)
    phase: str = "delta"  # snapshot | delta | poll

    @property
    def bare(self) -> str:
        return split_jid(self.jid)[0]

    def line(self) -> str:
        """One human line: time, what, who, presence."""
        return f"{self.time.astimezone(UTC).strftime('%H:%M:%S')} {self.describe()}"

    def describe(self) -> str:
        """What, who, presence (no time)."""
        text = f"{self.kind:<7} {self.jid}"
        if self.kind != "offline":
            text += f"  {SHOW_LABEL.get(self.show, self.show)}"
            if self.status:
                text += f" {self.status!r}"
            if self.priority:
                text += f" prio={self.priority}"
            if self.client:
                text += f" [{client_name(self.client)}]"
        if self.phase != "delta":
            text += f" ({self.phase})"
        return text

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "event": self.kind,
            "jid": self.jid,
            "phase": self.phase,
        }
        if self.kind != "offline":
            out.update(
                show=SHOW_LABEL.get(self.show, self.show),
                status=self.status or None,
                priority=self.priority,
                client=self.client or None,
            )
        return out


class Board:
    """Who is online: bare JID -> Row. Every update returns the changes it made."""

    def __init__(self, clock: Callable[[], datetime] = now) -> None:
        self.rows: dict[str, Row] = {}
        # what "today" is for the Since column; tests pin it so they hold on any day
        self.clock = clock
        self._snapshot: dict[str, dict[str, Resource]] | None = None

    # ---- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, bare: str) -> bool:
        return bare.lower() in self.rows

    def get(self, bare: str) -> Row | None:
        return self.rows.get(bare.lower())

    @property
    def sessions(self) -> int:
        return sum(len(row.resources) for row in self.rows.values())

    def matching(self, query: str = "") -> list[str]:
        """Bare JIDs of the rows matching `query`, sorted."""
        match = make_filter(query)
        return sorted(k for k, row in self.rows.items() if match(row))

    # ---- updates ---------------------------------------------------------------------------

    def apply(self, event: PresenceEvent, phase: str = "delta") -> list[Change]:
        """A delta: one session's new presence."""
        bare, name = split_jid(event.jid)
        when = event.stamp or now()
        row = self.rows.get(bare)
        old = row.resources.get(name) if row else None
        if not event.available:
            if old is None:
                return []
            del row.resources[name]  # type: ignore[union-attr]
            row.touch()  # type: ignore[union-attr]
            if not row.resources:  # type: ignore[union-attr]
                del self.rows[bare]
            return [Change("offline", _full(bare, name), time=when, phase=phase)]
        new = _resource(event, since=old.since if old else when)
        if old is not None and old.same_presence(new):
            return []
        if row is None:
            row = self.rows[bare] = Row(bare)
        row.resources[name] = new
        row.touch()
        return [_change("changed" if old else "online", bare, new, when, phase)]

    def begin_snapshot(self) -> None:
        self._snapshot = {}

    def add_snapshot(self, events: Iterable[PresenceEvent]) -> None:
        if self._snapshot is None:
            self.begin_snapshot()
        snap = self._snapshot
        assert snap is not None
        for event in events:
            if not event.available:
                continue
            bare, name = split_jid(event.jid)
            snap.setdefault(bare, {})[name] = _resource(event, since=event.stamp or now())

    def end_snapshot(self, phase: str = "snapshot") -> list[Change]:
        """The snapshot becomes the board; returns the differences to the board before."""
        snap, self._snapshot = self._snapshot or {}, None
        return self._replace(snap, phase)

    def replace(self, events: Iterable[PresenceEvent], phase: str = "poll") -> list[Change]:
        """A complete list of who is online (a poll): the board becomes exactly that."""
        snap: dict[str, dict[str, Resource]] = {}
        for event in events:
            if not event.available:
                continue
            bare, name = split_jid(event.jid)
            old = self.rows.get(bare)
            kept = old.resources.get(name) if old else None
            since = event.stamp or (kept.since if kept else now())
            snap.setdefault(bare, {})[name] = _resource(event, since=since)
        return self._replace(snap, phase)

    def clear(self) -> list[Change]:
        return self._replace({}, "delta")

    def _replace(self, snap: dict[str, dict[str, Resource]], phase: str) -> list[Change]:
        changes: list[Change] = []
        when = now()
        for bare, row in self.rows.items():
            fresh = snap.get(bare, {})
            for name in row.resources:
                if name not in fresh:
                    changes.append(Change("offline", _full(bare, name), time=when, phase=phase))
        for bare, resources in snap.items():
            row = self.rows.get(bare)
            for name, new in resources.items():
                old = row.resources.get(name) if row else None
                if old is None:
                    changes.append(_change("online", bare, new, new.since, phase))
                elif not old.same_presence(new):
                    changes.append(_change("changed", bare, new, when, phase))
                else:
                    new.changed = old.changed
        self.rows = {bare: Row(bare, resources) for bare, resources in snap.items() if resources}
        return changes


def _full(bare: str, resource: str) -> str:
    return f"{bare}/{resource}" if resource else bare


def _resource(event: PresenceEvent, since: datetime) -> Resource:
    return Resource(
        name=event.resource,
        show=event.show if event.show in SHOW_ORDER else "",
        status=event.status,
        priority=event.priority,
        client=event.client,
        since=since,
        changed=event.stamp or now(),
    )


def _change(kind: str, bare: str, r: Resource, when: datetime, phase: str) -> Change:
    return Change(
        kind, _full(bare, r.name), r.show, r.status, r.priority, r.client, when, phase=phase
    )


def make_filter(query: str):
    """A predicate on rows: every word must match. `show:away` (or `away`, `dnd`...) matches the
    user's show; `client:gajim` the client; anything else is a substring of JID, resources,
    status or client."""
    words = query.lower().split()
    if not words:
        return lambda row: True
    tests = []
    for word in words:
        key, sep, value = word.partition(":")
        if sep and key == "show":
            tests.append(lambda row, v=value: SHOW_LABEL.get(row.show, row.show) == v)
        elif sep and key == "client":
            tests.append(lambda row, v=value: v in row.client.lower())
        else:
            tests.append(lambda row, w=word: w in row.text())
    return lambda row: all(test(row) for test in tests)


# ---- the feed's sequence -------------------------------------------------------------------


class FeedTracker:
    """Checks the messages of one feed: the id, then seq 1, 2, 3... with the snapshot first.

    `check()` answers "ok", "stale" (another feed's message: ignore it), "duplicate" (already
    seen: ignore it) or "gap" (something was lost: start a new feed)."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.seq = 0
        self.in_snapshot = True
        self.gaps = 0

    def start(self, feed_id: str) -> None:
        self.id, self.seq, self.in_snapshot = feed_id, 0, True

    def check(self, feed_id: str, seq: int, kind: str, last: bool = False) -> str:
        if self.id is None or feed_id != self.id:
            return "stale"
        if seq <= self.seq:
            return "duplicate"
        if seq != self.seq + 1 or (kind == "delta") == self.in_snapshot:
            self.gaps += 1
            return "gap"
        self.seq = seq
        if kind == "snapshot" and last:
            self.in_snapshot = False
        return "ok"


# ---- the server's load ---------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSample:
    """The load the server publishes (`<load xmlns='urn:vinesctl:load:0'/>`)."""

    online: int = 0
    users: int = 0
    stanzas_in: float = 0.0
    stanzas_out: float = 0.0
    cpu: float = 0.0
    memory_kib: int = 0
    uptime: int = 0
    capacity: int = 0
    listeners: dict[str, int] = field(default_factory=dict)
    show: str = ""
    status: str = ""

    @property
    def rate(self) -> float:
        return self.stanzas_in + self.stanzas_out

    def to_json(self) -> dict[str, Any]:
        """`vinesctl load --json`: the figures, a presence text the server did not set as None."""
        data = dataclasses.asdict(self)
        data.update(show=self.show or None, status=self.status or None)
        return data

    @classmethod
    def from_attrs(
        cls,
        attrs: dict[str, str],
        listeners: dict[str, int] | None = None,
        show: str = "",
        status: str = "",
    ) -> LoadSample:
        def num(name: str, kind: type = int) -> Any:
            try:
                return kind(float(attrs.get(name, 0))) if kind is int else kind(attrs.get(name, 0))
            except (TypeError, ValueError):
                return kind(0)

        return cls(
            online=num("online"),
            users=num("users"),
            stanzas_in=num("stanzas_in", float),
            stanzas_out=num("stanzas_out", float),
            cpu=num("cpu", float),
            memory_kib=num("memory_kib"),
            uptime=num("uptime"),
            capacity=num("capacity"),
            listeners=dict(listeners or {}),
            show=show,
            status=status,
        )


class LoadHistory:
    """The latest load and a fixed-length history of online users and stanza rate, one point
    per `tick()` (the dashboard ticks once a second), for sparklines."""

    def __init__(self, length: int = 120) -> None:
        self.current: LoadSample | None = None
        self.received: datetime | None = None
        self.online: deque[float] = deque(maxlen=length)
        self.rate: deque[float] = deque(maxlen=length)
        self.source = "none"  # push | poll | none (the server publishes no load)
        # the nodes serving the service (our cluster admin node, polled), each with its own
        # sessions and load; empty when the server does not say
        self.nodes: list[Any] = []

    def record(self, sample: LoadSample, when: datetime | None = None) -> None:
        first = self.current is None
        self.current = sample
        self.received = when or now()
        if first:
            self.tick()

    def tick(self) -> None:
        if self.current is not None:
            self.online.append(float(self.current.online))
            self.rate.append(self.current.rate)


# ---- the event log -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    time: datetime
    text: str
    level: str = "info"  # info | warn | error | presence


class EventLog:
    """The last `size` entries; older ones fall off."""

    def __init__(self, size: int = 1000) -> None:
        self.entries: deque[LogEntry] = deque(maxlen=size)
        self.total = 0

    def add(self, text: str, level: str = "info", when: datetime | None = None) -> LogEntry:
        entry = LogEntry(when or now(), text, level)
        self.entries.append(entry)
        self.total += 1
        return entry

    def add_change(self, change: Change) -> LogEntry:
        return self.add(change.describe(), "presence", change.time)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
