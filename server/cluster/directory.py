"""The cluster's directory in Redis: which node holds each resource of an account, and the nodes.

Keys (one Redis database per cluster):
- `vines:user:{bare}`   hash resource -> JSON entry {node, available, priority, interested,
                        presence, since, info}: what routing needs to send to a resource on
                        another node, and what the admin listings show of it
- `vines:jids:{node}`   set of the full JIDs a node registered (what a purge removes)
- `vines:nodes`         set of the node names that joined
- `vines:alive:{node}`  a node's liveness key, refreshed by its heartbeat, expiring after `ttl`
- `vines:info`          hash node -> JSON {address, pid, sessions, load, beat}: its NodeStatus
- `vines:components`    hash component domain -> the node its component is connected to
- `vines:feeds`         set of the nodes running an admin presence feed (presence_feed.py)
- `vines:presence`      pub/sub channel every node listens on: while `vines:feeds` is not empty,
                        each change of a resource's presence is published there by the same
                        script that writes it (so a feed that reads the directory after joining
                        `vines:feeds` misses nothing: an older change is in what it reads)

Every change that must not interleave with another node's runs as one Lua script (Redis runs a
script atomically): a bind's check of the per-account session cap and its entry are one step
(`claim`), so two binds on two nodes at once cannot both take the last place; a node's entry is
removed only by that node or by the purge of that node, so a session that moved to another node
(resource conflict) keeps its new entry. The cap counts a dead node's sessions until it is
purged (at most `ttl` after its last heartbeat).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from vines_server.cluster.status import NodeStatus

PREFIX = "vines:"
NODES = PREFIX + "nodes"
INFO = PREFIX + "info"
COMPONENTS = PREFIX + "components"
FEEDS = PREFIX + "feeds"
PRESENCE = PREFIX + "presence"


def user_key(bare: str) -> str:
    return f"{PREFIX}user:{bare}"


def jids_key(node: str) -> str:
    return f"{PREFIX}jids:{node}"


def alive_key(node: str) -> str:
    return f"{PREFIX}alive:{node}"


# what the admin listings show of a session's connection (Session.info): its entry carries them
LISTED_INFO = ("ip", "listener", "tls_version", "cipher", "mechanism")


def listed_info(info: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k in LISTED_INFO if (v := info.get(k)) is not None}


def channel(node: str) -> str:
    """The pub/sub channel a node listens on for stanzas and acks (channel.py)."""
    return f"{PREFIX}node:{node}"


@dataclass(frozen=True)
class Entry:
    """One resource as the directory knows it."""

    node: str
    available: bool = False
    priority: int = 0
    interested: bool = False
    presence: str | None = None  # its last available presence, serialized
    since: float = 0.0  # bound at, epoch seconds (0: not known)
    info: dict[str, str] = field(default_factory=dict)  # its LISTED_INFO

    def dump(self) -> str:
        return json.dumps(
            {
                "node": self.node,
                "available": self.available,
                "priority": self.priority,
                "interested": self.interested,
                "presence": self.presence,
                "since": self.since,
                "info": self.info,
            },
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, raw: str) -> Entry:
        d = json.loads(raw)
        return cls(
            str(d["node"]),
            bool(d.get("available")),
            int(d.get("priority", 0)),
            bool(d.get("interested")),
            d.get("presence"),
            float(d.get("since") or 0.0),
            {k: str(v) for k, v in (d.get("info") or {}).items() if k in LISTED_INFO},
        )


# KEYS[1] user hash, KEYS[2] node's jid set, KEYS[3] the feeds set; ARGV: resource, full JID,
# node, entry, presence announcement ('' for none: its presence did not change)
# A presence announcement to the nodes running a feed (ARGV[5]; '' when the presence did not
# change), only while some node runs one: KEYS[3] is the feeds set
_ANNOUNCE = f"""
if ARGV[5] ~= '' and redis.call('SCARD', KEYS[3]) > 0 then
  redis.call('PUBLISH', '{PRESENCE}', ARGV[5])
end
"""

REGISTER = (
    """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
"""
    + _ANNOUNCE
    + "return 1\n"
)

# A bind (design decision 4, cluster-wide). KEYS as REGISTER; ARGV: resource, full JID, node,
# entry, the cap, how many other resources of the account this node holds (its own registry is
# exact, its entries may lag), '1' when one of them is this resource. The entry of a resource
# bound on another node is replaced (that node's name is returned: it closes the session with
# conflict); otherwise, with `cap` resources already bound, nothing is written (false).
CLAIM = """
local count, same, replaced = tonumber(ARGV[6]), ARGV[7] == '1', ''
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local node = cjson.decode(all[i + 1])['node']
  if all[i] == ARGV[1] then
    same = true
    if node ~= ARGV[3] then replaced = node end
  elseif node ~= ARGV[3] then
    count = count + 1
  end
end
if not same and count >= tonumber(ARGV[5]) then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
return replaced
"""

# the same keys and ARGV; removes the entry only while it is still this node's (a resource that
# moved to another node is not announced unavailable: that node announces it)
UNREGISTER = (
    """
redis.call('SREM', KEYS[2], ARGV[2])
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw and cjson.decode(raw)['node'] == ARGV[3] then
  redis.call('HDEL', KEYS[1], ARGV[1])
"""
    + _ANNOUNCE
    + """
  return 1
end
return 0
"""
)

# KEYS[1] the components hash; ARGV: domain, node. Only the node serving it lets it go.
RELEASE_COMPONENT = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# KEYS[1] alive key, KEYS[2] jid set, KEYS[3] nodes set, KEYS[4] info hash, KEYS[5] the
# components hash, KEYS[6] the feeds set; ARGV[1] node,
# ARGV[2] the user-hash prefix. Nothing happens while the node's liveness key exists (it came
# back) or when another survivor purged it first (no longer in the nodes set): one survivor
# gets the purged entries, and announces them.
PURGE = (
    """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if redis.call('SREM', KEYS[3], ARGV[1]) == 0 then return false end
local gone = {}
local feeds = redis.call('SCARD', KEYS[6]) > 0
for _, full in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local slash = string.find(full, '/', 1, true)
  if slash then
    local key = ARGV[2] .. string.sub(full, 1, slash - 1)
    local resource = string.sub(full, slash + 1)
    local raw = redis.call('HGET', key, resource)
    if raw and cjson.decode(raw)['node'] == ARGV[1] then
      redis.call('HDEL', key, resource)
      table.insert(gone, full)
      table.insert(gone, raw)
      if feeds and cjson.decode(raw)['available'] then
        redis.call('PUBLISH', '"""
    + PRESENCE
    + """',
          cjson.encode({k = 'presence', full = full, node = ARGV[1]}))
      end
    end
  end
end
redis.call('SREM', KEYS[6], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[4], ARGV[1])
local components = redis.call('HGETALL', KEYS[5])
for i = 1, #components, 2 do
  if components[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[5], components[i]) end
end
return gone
"""
)


def announcement(full: str, node: str, presence: str | None) -> str:
    """What `vines:presence` carries: a resource's presence now (None: unavailable)."""
    return json.dumps(
        {"k": "presence", "full": full, "node": node, "xml": presence}, separators=(",", ":")
    )


class Directory:
    """The directory's operations over one `redis.asyncio.Redis` client (decoded responses)."""

    def __init__(self, redis: Any, node: str, ttl: float) -> None:
        self.redis = redis
        self.node = node
        self.ttl = ttl
        self._register = redis.register_script(REGISTER)
        self._claim = redis.register_script(CLAIM)
        self._unregister = redis.register_script(UNREGISTER)
        self._purge = redis.register_script(PURGE)
        self._release_component = redis.register_script(RELEASE_COMPONENT)

    # ---- sessions --------------------------------------------------------------------------

    async def register(self, full: str, entry: Entry, announce: bool = False) -> None:
        """Write `full`'s entry; `announce`: its presence changed, for the feeds."""
        bare, _, resource = full.partition("/")
        said = announcement(full, self.node, entry.presence if entry.available else None)
        await self._register(
            keys=[user_key(bare), jids_key(self.node), FEEDS],
            args=[resource, full, self.node, entry.dump(), said if announce else ""],
        )

    async def claim(
        self, full: str, entry: Entry, cap: int, own: int, own_same: bool
    ) -> str | None:
        """A bind's place, taken atomically (CLAIM): None when `cap` resources are bound
        already; else the node whose session of `full` it replaces ('' for none)."""
        bare, _, resource = full.partition("/")
        return await self._claim(
            keys=[user_key(bare), jids_key(self.node)],
            args=[resource, full, self.node, entry.dump(), cap, own, "1" if own_same else "0"],
        )

    async def unregister(self, full: str, announce: bool = False) -> None:
        """Remove `full`'s entry; `announce`: it was available, the feeds learn it went."""
        bare, _, resource = full.partition("/")
        said = announcement(full, self.node, None) if announce else ""
        await self._unregister(
            keys=[user_key(bare), jids_key(self.node), FEEDS],
            args=[resource, full, self.node, "", said],
        )

    async def watch_presence(self, watching: bool) -> None:
        """Join or leave the nodes that other nodes announce presence changes to."""
        if watching:
            await self.redis.sadd(FEEDS, self.node)
        else:
            await self.redis.srem(FEEDS, self.node)

    async def resources(self, *bares: str) -> list[dict[str, Entry]]:
        """Each account's resources on every node (this one's included)."""
        pipe = self.redis.pipeline(transaction=False)
        for bare in bares:
            pipe.hgetall(user_key(bare))
        out = []
        for raw in await pipe.execute():
            entries = {}
            for resource, value in raw.items():
                try:
                    entries[resource] = Entry.load(value)
                except (ValueError, KeyError, TypeError):
                    continue  # not ours to read: ignored rather than routed to
            out.append(entries)
        return out

    async def online(self) -> list[str]:
        """The full JIDs bound on any node that joined."""
        names = await self.redis.smembers(NODES)
        if not names:
            return []
        return sorted(await self.redis.sunion(*(jids_key(n) for n in names)))

    # ---- nodes -----------------------------------------------------------------------------

    async def beat(self, info: dict[str, Any], components: list[str]) -> bool:
        """Refresh this node's liveness key and record, and the components connected here;
        True when the node was not in the cluster before (its first beat, or it was purged,
        or Redis lost its data)."""
        info = {**info, "beat": time.time()}
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(alive_key(self.node), "1", px=int(self.ttl * 1000))
        pipe.sadd(NODES, self.node)
        pipe.hset(INFO, self.node, json.dumps(info, separators=(",", ":")))
        for domain in components:
            pipe.hset(COMPONENTS, domain, self.node)
        _, added, *_ = await pipe.execute()
        return bool(added)

    # ---- components ------------------------------------------------------------------------

    async def release_component(self, domain: str) -> None:
        await self._release_component(keys=[COMPONENTS], args=[domain, self.node])

    async def component(self, domain: str) -> str | None:
        """The node a component is connected to, if any."""
        return await self.redis.hget(COMPONENTS, domain)

    async def leave(self) -> None:
        """A clean stop: this node's sessions are already unregistered; its records go."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(alive_key(self.node), jids_key(self.node))
        pipe.srem(NODES, self.node)
        pipe.srem(FEEDS, self.node)
        pipe.hdel(INFO, self.node)
        await pipe.execute()

    async def dead(self) -> list[str]:
        """Nodes that joined and whose liveness key expired."""
        names = sorted(await self.redis.smembers(NODES))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(alive_key(name))
        alive = await pipe.execute()
        return [n for n, a in zip(names, alive, strict=True) if not a and n != self.node]

    async def purge(self, node: str) -> list[tuple[str, Entry]] | None:
        """Remove a dead node atomically; the full JIDs and entries it held. None when another
        survivor purged it first, or it came back."""
        raw = await self._purge(
            keys=[alive_key(node), jids_key(node), NODES, INFO, COMPONENTS, FEEDS],
            args=[node, PREFIX + "user:"],
        )
        if raw is None:
            return None
        return [(raw[i], Entry.load(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def alive(self, node: str) -> bool:
        return bool(await self.redis.exists(alive_key(node)))

    async def nodes(self) -> list[NodeStatus]:
        names = sorted(await self.redis.smembers(NODES))
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(INFO)
        for name in names:
            pipe.exists(alive_key(name))
        info, *alive = await pipe.execute()
        now = time.time()
        out = []
        for name, is_alive in zip(names, alive, strict=True):
            try:
                d = json.loads(info.get(name) or "{}")
            except ValueError:
                d = {}
            out.append(
                NodeStatus(
                    name=name,
                    address=str(d.get("address", "")),
                    heartbeat_age=max(0.0, now - float(d.get("beat", now))),
                    alive=bool(is_alive),
                    sessions=int(d.get("sessions", 0)),
                    load=float(d.get("load", 0.0)),
                    pid=int(d.get("pid", 0)),
                )
            )
        return out
