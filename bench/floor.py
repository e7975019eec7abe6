#!/usr/bin/env python3
"""The floor under a routed message on this machine: a forwarder with no XMPP at all.

    python bench/floor.py                          # 1000 clients in pairs, 2000 msg/s, 10 s
    python bench/floor.py --rate 10000 --procs 4 --json out.json

A server process accepts direct-TLS connections through the server's own lean TLS transport
(`vines_server.net.transport.StreamTLS` over a plain asyncio protocol, the server's own context
from `vines_server.net.tls.server_context`) and forwards each newline-terminated line to the
connection it names: per message, what the bundled server cannot avoid (an event-loop wake-up, a
`recv`, a TLS record decrypted, one encrypted and a `send`) and none of what XMPP adds (parsing,
stamping, routing, hooks). Clients send lines of the size of bench/loadgen.py's chat messages at
--rate, in pairs, and time each from write to read as loadgen does.

It prints the server's CPU per forwarded message over the measured window (user + system, from
/proc) and the latency percentiles: side by side with `loadgen.py messages` against the bundled
server at the same rate, the difference is what XMPP costs in our code, and this figure is the
least any Python server built this way can spend per message (issue 14's 20 000 msg/s on one
core allows 50 us in all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import ssl
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import cpu_seconds, now_ns, summary_ms, until_due  # noqa: E402 (the bench directory)

# the size of loadgen's stanza, '<message to=... type='chat' id=...><body>i seq stamp</body>...'
PAD = b"x" * 110


def serve(port_file: str, cert: str, key: str) -> None:
    from vines_server.net.reads import SharedBufferReads
    from vines_server.net.tls import server_context
    from vines_server.net.transport import StreamTLS

    ctx = server_context({"floor.test": (cert, key)})
    peers: dict[bytes, Forwarder] = {}

    class Forwarder(SharedBufferReads):  # the server's own reads too (net/reads.py)
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.io = StreamTLS(transport)
            self.io.start_tls(ctx)
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += self.io.data_received(data)
            *lines, self.buf = self.buf.split(b"\n")
            for line in lines:
                to, _, rest = line.partition(b" ")
                if to == b"HELLO":
                    peers[rest] = self
                    self.io.write(b"OK\n")
                elif (peer := peers.get(to)) is not None:
                    peer.io.write(rest + b"\n")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Forwarder, "127.0.0.1", 0)
        Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(main())


async def drive(port: int, ca: str, ids: list[int], rate: float, duration: float, warmup: float,
                barrier, pid: int) -> dict:  # fmt: skip
    ctx = ssl.create_default_context(cafile=ca)
    latencies: list[int] = []
    received = 0
    measuring = False

    class Reader(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            nonlocal received
            t = now_ns()
            *lines, self.buf = (self.buf + data).split(b"\n")
            for line in lines:
                if line.startswith(b"M"):
                    received += 1
                    if measuring:
                        latencies.append(t - int(line[1:].partition(b" ")[0]))

    writers = []
    for i in ids:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="floor.test"
        )
        writer.write(b"HELLO %d\n" % i)
        await reader.readline()
        writer.transport.set_protocol(Reader())
        writers.append((i ^ 1, writer))
    await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    t0, total, sent, cpu = time.monotonic(), 0, 0, []
    while (elapsed := time.monotonic() - t0) < duration + warmup:
        if elapsed >= warmup and not measuring:
            measuring, sent, cpu = True, 0, [cpu_seconds(pid)]
        due = int(rate * elapsed) - total
        for k in range(max(0, due)):
            partner, writer = writers[(total + k) % len(writers)]
            writer.write(b"%d M%d %s\n" % (partner, now_ns(), PAD))
        total += max(0, due)
        sent += max(0, due)
        await until_due(t0, total, rate)
    cpu.append(cpu_seconds(pid))
    deadline = time.monotonic() + 10
    while received < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return {"sent": total, "received": received, "sent_measured": sent, "cpu": cpu,
            "latencies": latencies}  # fmt: skip


def _client(args: tuple, ids: list[int], barrier, queue) -> None:
    port, ca, rate, duration, warmup, pid = args
    queue.put(asyncio.run(drive(port, ca, ids, rate, duration, warmup, barrier, pid)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=1000, help="an even number: they pair up")
    p.add_argument("--rate", type=float, default=2000.0, help="messages/s, all clients")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    p.add_argument("--procs", type=int, default=2, help="client processes")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    ns = p.parse_args()
    from cryptography.hazmat.primitives import serialization
    from vines_server import certs

    with tempfile.TemporaryDirectory(prefix="vines-floor-") as tmp:
        ca_cert, ca_key = certs.make_ca("floor CA")
        ca = Path(tmp, "ca.crt")
        ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert, key = certs.make_certificate(["floor.test"], issuer=(ca_cert, ca_key))
        certs.write_pem(cert, key, Path(tmp, "s.crt"), Path(tmp, "s.key"))
        port_file = Path(tmp, "port")
        server = mp.get_context("spawn").Process(
            target=serve, args=(str(port_file), str(Path(tmp, "s.crt")), str(Path(tmp, "s.key")))
        )
        server.start()
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.05)
            port = int(port_file.read_text())
            procs = max(1, ns.procs)
            barrier, queue = mp.Barrier(procs), mp.Queue()
            share = ns.clients // procs // 2 * 2  # pairs stay within a process
            args = (port, str(ca), ns.rate / procs, ns.duration, ns.warmup, server.pid)
            shares = [list(range(k * share, (k + 1) * share)) for k in range(procs)]
            workers = [mp.Process(target=_client, args=(args, s, barrier, queue)) for s in shares]
            for w in workers:
                w.start()
            results = [queue.get() for _ in workers]
            for w in workers:
                w.join()
        finally:
            server.kill()
            server.join()
    sent_measured = sum(r["sent_measured"] for r in results)
    user = max(r["cpu"][1][0] for r in results) - min(r["cpu"][0][0] for r in results)
    system = max(r["cpu"][1][1] for r in results) - min(r["cpu"][0][1] for r in results)
    out = {
        "clients": share * procs,
        "rate": ns.rate,
        "sent": sum(r["sent"] for r in results),
        "received": sum(r["received"] for r in results),
        "server_user_us_per_msg": round(user * 1e6 / sent_measured, 1),
        "server_sys_us_per_msg": round(system * 1e6 / sent_measured, 1),
        "latency": summary_ms([x for r in results for x in r["latencies"]]),
    }
    print(json.dumps(out))
    if ns.json:
        Path(ns.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
