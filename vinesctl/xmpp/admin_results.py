"""The results of the administration verbs (`vinesctl.xmpp.admin`) that report rather than
change: rosters, user statistics, listings, the server's tables, statistics and cluster.

Apart from `admin` so that a verb that changes something (`vinesctl user add`) does not build
them: each dataclass costs ~0.4 ms to create, and these are most of that module's start-up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vinesctl.xmpp.adhoc import Note


@dataclass
class RosterItem:
    jid: str
    name: str | None = None  # None: the contact has no name
    subscription: str = ""
    groups: list[str] = field(default_factory=list)


@dataclass
class UserStats:
    jid: str
    ipaddresses: list[str] = field(default_factory=list)
    rostersize: int | None = None
    onlineresources: list[str] = field(default_factory=list)
    stanzaspersecond: float | None = None
    loginsperminute: float | None = None
    lastlogin: str | None = None  # ISO 8601 as the server sent it; None: never, or not told
    disabled: bool | None = None  # None: the server offers no disabled-users list
    roster: list[RosterItem] | None = None
    other: dict[str, list[str]] = field(default_factory=dict)  # fields we do not know


@dataclass
class OnlineUser:
    jid: str
    # with details: one dict per session (resource, then the server's fields: ip, since, show,
    # priority...), or {"text": line} from a server that describes sessions in prose
    sessions: list[dict[str, Any]] | None = None


@dataclass
class Column:
    var: str
    label: str = ""


@dataclass
class Table:
    """A multi-item result (XEP-0004 reported + items); a missing cell is None. As JSON: the
    rows (the labels are for people)."""

    columns: list[Column] = field(default_factory=list)
    rows: list[dict[str, str | None]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        return self.rows


@dataclass
class Sessions:
    """The server's client sessions (our sessions node)."""

    table: Table

    def to_json(self) -> dict[str, Any]:
        return {"sessions": self.table.rows}


@dataclass
class S2SStreams:
    """The server's s2s streams (our s2s node)."""

    table: Table

    def to_json(self) -> dict[str, Any]:
        return {"streams": self.table.rows}


@dataclass
class Component:
    """One configured external component (our components node)."""

    domain: str
    name: str | None
    connected: bool
    address: str | None
    since: str | None
    stanzas_in: int
    stanzas_out: int
    show: str | None  # available, away, dnd... as its last presence to the server said
    load: dict[str, str] | None  # its last urn:vinesctl:load:0 attributes


@dataclass
class Components:
    components: list[Component] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"components": [asdict(c) for c in self.components]}


@dataclass
class ClusterNode:
    """One node serving the service (our cluster node; a server on its own is one node)."""

    name: str
    address: str | None  # its c2s listener, host:port
    heartbeat_age: float | None  # seconds since its liveness key was refreshed
    alive: bool
    sessions: int
    load: float | None  # percent of one core
    pid: int | None


@dataclass
class Cluster:
    nodes: list[ClusterNode] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"nodes": [asdict(n) for n in self.nodes]}


@dataclass
class Value:
    var: str
    label: str
    value: int | float | str | list[str] | None  # a number as a number, nothing as None


@dataclass
class Stats:
    domain: str
    values: list[Value] = field(default_factory=list)  # from our stats node, in its order
    tables: list[Table] = field(default_factory=list)  # per-listener tables and such
    counts: dict[str, int] = field(default_factory=dict)  # registered/online/... users
    unsupported: list[str] = field(default_factory=list)  # nodes the server lacks
    nodes: list[ClusterNode] = field(default_factory=list)  # per node, when it says (ours)


@dataclass
class Account:
    jid: str
    disabled: bool | None = None  # None: the server does not tell
    online: bool | None = None


@dataclass
class Reloaded:
    """What our reload node applied and what changed but needs a restart."""

    changed: list[str]
    restart: list[str]
    notes: list[Note] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"method": "admin", "changed": self.changed, "restart": self.restart}


@dataclass
class Roster:
    """A user's roster (get-user-roster), the typed result of `vinesctl roster`."""

    jid: str
    items: list[RosterItem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "jid": self.jid,
            "items": [
                {"jid": i.jid, "name": i.name, "subscription": i.subscription, "groups": i.groups}
                for i in self.items
            ],
        }
