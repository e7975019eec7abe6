"""Cluster nodes for tests: servers sharing one throw-away PostgreSQL database and one
redis-server (tests/support/postgres.py, redis.py), in this process (`cluster`) or as a
separate `vines-server` process that a test can SIGKILL (`node_process`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from vines_server.server import Server
from vines_server.storage.base import RosterItem

from tests.support.ports import free_port
from tests.support.postgres import PostgresInstance
from tests.support.redis import RedisInstance
from tests.support.xmpp import (
    DOMAIN,
    OTHER,
    PKI,
    TEST_ITERATIONS,
    Harness,
    RawClient,
    server_config,
)

# quick liveness for tests: Redis going is noticed within a heartbeat; the ttl leaves room for
# a loaded machine (a live node purged would register again, but meanwhile miss stanzas)
HEARTBEAT, TTL = 0.25, 2.0


@dataclass
class Shared:
    """What every node of one test's cluster shares."""

    pki: PKI
    tmp: Path
    dsn: str
    postgres: PostgresInstance
    redis: RedisInstance
    limits: dict[str, Any] = field(default_factory=dict)  # [limits] of every node
    extra: dict[str, Any] = field(default_factory=dict)  # more sections, of every node

    def sections(self, node: str, **cluster: Any) -> dict[str, Any]:
        sections = self._sections(node, **cluster)
        for name, values in self.extra.items():
            sections.setdefault(name, {}).update(values)
        return sections

    def _sections(self, node: str, **cluster: Any) -> dict[str, Any]:
        return {
            "limits": {"pbkdf2_iterations": TEST_ITERATIONS, **self.limits},
            "storage": {"dsn": self.dsn, "dsn_password_file": str(self.postgres.password_file)},
            "cluster": {
                "redis": self.redis.url,
                "password_file": str(self.redis.password_file),
                "node": node,
                "heartbeat": HEARTBEAT,
                "ttl": TTL,
                **cluster,
            },
        }

    def raw(self, node: str, **cluster: Any) -> dict[str, Any]:
        """A vines.toml for a node in its own process (fixed ports: given by the caller)."""
        sections = self.sections(node, **cluster)
        return {
            "server": {"admins": [f"admin@{DOMAIN}"], "log_level": "info"},
            "domains": {
                d: {"certificate": str(self.pki.cert), "key": str(self.pki.key)}
                for d in (DOMAIN, OTHER)
            },
            "storage": {"backend": "postgresql", **sections["storage"]},
            "limits": sections["limits"],
            "cluster": sections["cluster"],
        }


async def start_node(shared: Shared, node: str, **cluster: Any) -> Harness:
    directory = shared.tmp / node
    directory.mkdir(exist_ok=True)
    config = server_config(shared.pki, directory, "postgresql", **shared.sections(node, **cluster))
    server = Server(config)
    await server.start()
    return Harness(server, shared.pki)


@asynccontextmanager
async def cluster(shared: Shared, *nodes: str, **settings: Any):
    """In-process nodes, started in order, stopped at the end; `settings`: [cluster] keys."""
    async with AsyncExitStack() as stack:
        harnesses = []
        for node in nodes:
            harness = await start_node(shared, node, **settings)
            stack.push_async_callback(harness.server.stop)
            harnesses.append(harness)
        yield harnesses


@dataclass
class NodeProcess:
    """A node in its own process; what the clients need of a harness (`port()`, `pki`)."""

    process: subprocess.Popen[bytes]
    c2s_port: int
    log: Path
    pki: PKI

    def port(self, kind: str = "c2s-starttls") -> int:
        assert kind == "c2s-starttls"
        return self.c2s_port

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


async def node_process(shared: Shared, node: str, **cluster: Any) -> NodeProcess:
    """Start a node in its own process (the SIGKILL tests); returns once it accepts clients."""
    directory = shared.tmp / node
    directory.mkdir(exist_ok=True)
    raw = shared.raw(node, **cluster)
    port = free_port()
    raw["listeners"] = {"bind": ["127.0.0.1"], "c2s_port": port, "c2s_direct_tls_port": False}
    path = directory / "vines.toml"
    path.write_bytes(tomli_w.dumps(raw).encode())
    log = directory / "node.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "vines_server", "--config", str(path), "--log-file", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"node {node} exited: {log.read_text() if log.exists() else ''}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                process.kill()
                raise RuntimeError(f"node {node} did not listen within 30 s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return NodeProcess(process, port, log, shared.pki)


@dataclass
class Bound:
    client: RawClient
    bound: bytes  # the bind reply


async def raw_bind(harness: Harness, local: str, resource: str) -> Bound:
    """A raw client logged in on `harness`'s node, binding `resource`."""
    client = await RawClient.connect(harness.port(), harness.pki.ca_file)
    return Bound(client, await client.login(local, resource=resource))


async def until_registered(harness: Harness, bare: str, count: int) -> None:
    """The directory holds `count` resources of `bare` (written by the nodes' own tasks)."""
    cluster = harness.server.cluster
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while len((await cluster.directory.resources(bare))[0]) != count:
        assert loop.time() < deadline, f"{bare} never had {count} resources in the directory"
        await asyncio.sleep(0.02)


async def befriend(storage: Any, a: str, b: str) -> None:
    """Mutual subscription, written straight to the shared store."""
    await storage.put_roster_item(a, RosterItem(b, subscription="both"))
    await storage.put_roster_item(b, RosterItem(a, subscription="both"))


async def until(probe: Any, expected: Any, timeout: float = 5.0) -> None:
    """Wait for an async probe to return `expected` (state written by another task or node)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (value := await probe()) != expected:
        assert loop.time() < deadline, f"still {value!r}, expected {expected!r}"
        await asyncio.sleep(0.02)
