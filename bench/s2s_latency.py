#!/usr/bin/env python3
"""s2s message latency: two instances of our server (a.test and b.test, each its own process)
federating over loopback with SASL EXTERNAL (a test CA both trust, static routes), U users on
a.test sending chat messages to their partners on b.test at a total target rate.

Each body carries the sender, a sequence number and a send timestamp (CLOCK_MONOTONIC, as in
loadgen.py, whose client this reuses); the receivers on b.test compute the latency: client ->
a.test -> s2s -> b.test -> client. Prints one JSON object: sent, received, lost, p50/p95/p99 ms.

    python bench/s2s_latency.py --rate 1000 --duration 10 --users 50

The load generator shares the machine's cores with both servers; quote the figures with that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import loadgen

PREFIX = "bench"
DOMAINS = ("a.test", "b.test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    """One server process for `domain`, federating with `peer` on `peer_port`."""

    def __init__(self, root: Path, domain: str, peer: str, ports: dict[str, int], ca) -> None:
        from vines_server import certs

        self.root, self.domain = root / domain, domain
        self.root.mkdir(parents=True)
        cert, key = certs.make_certificate([domain], issuer=ca)
        certs.write_pem(cert, key, self.root / "server.crt", self.root / "server.key")
        self.ca_file = root / "ca.crt"
        lines = [
            "[server]",
            'log_level = "warning"',
            f'[domains."{domain}"]',
            'certificate = "server.crt"',
            'key = "server.key"',
            "[listeners]",
            'bind = ["127.0.0.1"]',
            "c2s_port = 0",
            "c2s_direct_tls_port = false",
            f"s2s_port = {ports[domain]}",
            "[storage]",
            'backend = "sqlite"',
            'path = "vines.sqlite"',
            "[limits]",
            "pbkdf2_iterations = 4096",
            "connections_per_ip = 1000000",
            "auth_failures_per_ip = 1000000",
            "[federation]",
            f'allow = ["{peer}"]',
            f'ca_file = "{self.ca_file}"',
            f'[federation.peers."{peer}"]',
            'host = "127.0.0.1"',
            f"port = {ports[peer]}",
            "",
        ]
        self.config_file = self.root / "vines.toml"
        self.config_file.write_text("\n".join(lines))
        self.state_file = self.root / "vines.state.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    async def provision(self, users: int, password: str) -> None:
        from vines_server.config import load
        from vines_server.storage import open_storage
        from vines_server.xmpp.sasl.credentials import derive_all

        store = open_storage(load(self.config_file).storage)
        credentials = derive_all(password, 4096)
        await store.open()
        try:
            for i in range(users):
                await store.create_account(f"{PREFIX}{i}@{self.domain}", credentials)
        finally:
            await store.close()

    def start(self, timeout: float = 20.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vines_server", "--config", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=open(self.root / "stdout.log", "ab"),  # noqa: SIM115 (the child keeps it)
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "stdout.log").read_text(errors="replace")[-2000:])
            if self.state_file.exists():
                state = json.loads(self.state_file.read_text())
                self.port = next(
                    li["port"] for li in state["listeners"] if li["kind"] == "c2s-starttls"
                )
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.domain} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


async def run(a: Instance, b: Instance, args: argparse.Namespace, password: str) -> dict:
    def options(side: Instance) -> loadgen.Options:
        return loadgen.Options(
            "127.0.0.1", side.port, side.domain, PREFIX, args.users, password, ca=str(side.ca_file)
        )

    oa, ob = options(a), options(b)
    senders, _, err_a = await loadgen.login_many(
        oa, loadgen.client_context(oa), list(range(args.users)), 20
    )
    receivers, _, err_b = await loadgen.login_many(
        ob, loadgen.client_context(ob), list(range(args.users)), 20
    )
    if err_a or err_b:
        raise RuntimeError(f"logins failed: {(err_a + err_b)[:3]}")
    for c in receivers:
        c.send("<presence/>")
    n = len(senders)
    sent = [0] * n
    received = [0] * n
    latencies: list[int] = []
    measuring = False

    async def reader(c: loadgen.Client) -> None:
        buf = c.buf
        assert c.reader is not None
        while True:
            data = await c.reader.read(65536)
            if not data:
                return
            buf += data
            t = loadgen.now_ns()
            last = 0
            for m in loadgen.BODY.finditer(buf):
                last = m.end()
                received[int(m.group(1))] += 1
                if measuring:
                    latencies.append(t - int(m.group(3)))
            buf = buf[last:]

    readers = [asyncio.create_task(reader(c)) for c in receivers]
    # the first message opens the s2s stream; wait until it arrives before measuring
    senders[0].send(f"<message to='{PREFIX}0@{b.domain}' type='chat'><body>0 0 0</body></message>")
    sent[0] += 1
    deadline = time.monotonic() + 20
    while received[0] == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    t0 = time.monotonic()
    total = 0
    i = 0
    while (elapsed := time.monotonic() - t0) < args.warmup + args.duration:
        measuring = elapsed >= args.warmup
        due = int(args.rate * elapsed) - total
        for _ in range(max(0, due)):
            c = senders[i]
            seq = sent[i]
            sent[i] += 1
            c.send(
                f"<message to='{PREFIX}{c.index}@{b.domain}' type='chat'>"
                f"<body>{c.index} {seq} {loadgen.now_ns()}</body></message>"
            )
            i = (i + 1) % n
        total += max(0, due)
        await asyncio.sleep(0.002)
    deadline = time.monotonic() + args.drain
    while sum(received) < sum(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in readers:
        task.cancel()
    for c in senders + receivers:
        c.close()
    return {
        "rate": args.rate,
        "duration": args.duration,
        "users": n,
        "sent": sum(sent),
        "received": sum(received),
        "lost": sum(sent) - sum(received),
        "latency_ms": loadgen.summary_ms(latencies),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000.0, help="total msg/s")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    p.add_argument("--drain", type=float, default=10.0, help="seconds to wait for stragglers")
    p.add_argument("--users", type=int, default=50, help="sender/receiver pairs")
    args = p.parse_args()

    from cryptography.hazmat.primitives import serialization
    from vines_server import certs

    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="vines-s2s-bench-") as tmp:
        root = Path(tmp)
        ca = certs.make_ca("s2s bench CA")
        (root / "ca.crt").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
        ports = {d: free_port() for d in DOMAINS}
        a = Instance(root, DOMAINS[0], DOMAINS[1], ports, ca)
        b = Instance(root, DOMAINS[1], DOMAINS[0], ports, ca)
        for side in (a, b):
            asyncio.run(side.provision(args.users, password))
        try:
            a.start()
            b.start()
            result = asyncio.run(run(a, b, args, password))
        finally:
            a.stop()
            b.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
