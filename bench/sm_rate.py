"""Message rate and latency with stream management on and off (issue 12, design decision 6).

    python bench/sm_rate.py [--pairs 1,8] [--duration 5] [--json FILE]

One server process (the bundled server, `compare.VinesSide`). For each number of pairs and
each mode, that many senders send chat messages to as many receivers (full JIDs, live
sessions), each sender keeping a window of WINDOW messages in flight (it sends the next one
when its receiver got one), for --duration seconds. Printed: messages per second delivered,
and the latency from send to receipt (median, 99th percentile, in ms).

- off: neither side enables XEP-0198: a message goes straight to the receiver's socket.
- sm:  both enable it; the receiver acknowledges when asked. A message goes out at once while
       its commit to the store runs, grouped with others (`core/pending.py`); only the
       sender's h waits for the commit (design decision 6), and the row is deleted once the
       receiver acknowledges it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from compare import PREFIX, VinesSide
from loadgen import Client, Options, client_context
from sm_kill_loop import REQUEST, SM, enable

PASSWORD = "rate-password"
WINDOW = 16
BODY = re.compile(rb"<body>t(\d+)</body>")


async def pair(sender: Client, receiver: Client, until: float, latencies: list[float]) -> int:
    credit = asyncio.Semaphore(WINDOW)
    received = 0

    async def receive() -> None:
        nonlocal received
        assert receiver.reader is not None
        buf, handled = b"", 0
        while time.monotonic() < until + 2:
            try:
                data = await asyncio.wait_for(receiver.reader.read(65536), 0.5)
            except TimeoutError:
                continue
            if not data:
                return
            buf += data
            cut = buf.rfind(b">") + 1
            chunk, buf = buf[:cut], buf[cut:]
            now = time.monotonic_ns()
            for sent_ns in BODY.findall(chunk):
                latencies.append((now - int(sent_ns)) / 1e6)
                received += 1
                handled += 1
                credit.release()
            if REQUEST.search(chunk):
                receiver.send(f"<a xmlns='{SM}' h='{handled}'/>")

    reading = asyncio.ensure_future(receive())
    while time.monotonic() < until:
        try:
            await asyncio.wait_for(credit.acquire(), 1)
        except TimeoutError:
            continue
        body = f"t{time.monotonic_ns()}"
        sender.send(f"<message to='{receiver.jid}' type='chat'><body>{body}</body></message>")
        await sender.writer.drain()
    await asyncio.wait([reading], timeout=3)
    reading.cancel()
    return received


async def measure(opts: Options, pairs: int, mode: str, duration: float) -> dict:
    ctx = client_context(opts)
    clients = [Client(opts, ctx, i) for i in range(2 * pairs)]
    await asyncio.gather(*(c.login() for c in clients))
    if mode == "sm":
        await asyncio.gather(*(enable(c) for c in clients))
    latencies: list[float] = []
    start = time.monotonic()
    until = start + duration
    counts = await asyncio.gather(
        *(pair(clients[2 * i], clients[2 * i + 1], until, latencies) for i in range(pairs))
    )
    for c in clients:
        c.writer.close()
    latencies.sort()
    return {
        "pairs": pairs,
        "mode": mode,
        "messages_per_s": round(sum(counts) / duration),
        "latency_ms_p50": round(statistics.median(latencies), 2) if latencies else None,
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 2)
        if latencies
        else None,
    }


async def main_async(ns: argparse.Namespace, side: VinesSide, users: int) -> list[dict]:
    opts = Options("127.0.0.1", side.port, side.domain, PREFIX, users, PASSWORD)
    opts.ca = str(side.ca_file)
    rows = []
    for pairs in ns.pairs:
        for mode in ("off", "sm"):
            row = await measure(opts, pairs, mode, ns.duration)
            rows.append(row)
            print(
                f"pairs {pairs:3d}  {mode:3s}  {row['messages_per_s']:6d} msg/s  "
                f"latency p50 {row['latency_ms_p50']} ms  p99 {row['latency_ms_p99']} ms",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    ns = parser.parse_args()
    users = 2 * max(ns.pairs)
    side = VinesSide(Path(tempfile.mkdtemp(prefix="sm-rate-")), users, PASSWORD, 10_000)
    side.start()
    try:
        rows = asyncio.run(main_async(ns, side, users))
    finally:
        side.stop()
    if ns.json:
        ns.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
