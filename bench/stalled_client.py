"""Server memory with a client that does not read (issue 8 section 3, design decision 12).

    python bench/stalled_client.py [--scenario vcard|messages|both] [--duration S]

Each scenario starts a fresh server process (the bundled server, `compare.VinesSide`, default
limits), reads its RSS from /proc, runs, and prints the RSS before, the highest seen while it
ran, and after:

- vcard:    a client sets a 60 KB vCard, stops reading (receive buffer of 4 KiB, reading
            paused) and pipelines `get`s of it for --duration seconds (default 24).
- messages: a client logs in, sends presence and stops reading; another client sends it
            200 KB messages as fast as the server takes them for --duration seconds (default 10).

To measure another checkout (before a change), run it with PYTHONPATH pointing at a directory
whose `vines_server` is that checkout's `server/` folder; the server process inherits it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from compare import PREFIX, VinesSide
from loadgen import Client, Options, client_context, rss_kib

VCARD_BYTES = 60_000
MESSAGE_BYTES = 200_000


def stop_reading(client: Client) -> None:
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.writer.transport.pause_reading()


async def sample(pid: int, until: float, peak: list[int]) -> None:
    while time.monotonic() < until:
        peak[0] = max(peak[0], rss_kib(pid))
        await asyncio.sleep(0.2)


async def vcard(opts: Options, pid: int, duration: float) -> dict:
    client = Client(opts, client_context(opts), 0)
    await client.login()
    card = "y" * VCARD_BYTES
    vcard = f"<vCard xmlns='vcard-temp'><DESC>{card}</DESC></vCard>"
    client.send(f"<iq type='set' id='set'>{vcard}</iq>")
    await client._read_until(b"id='set'")
    stop_reading(client)
    gets = "".join(f"<iq type='get' id='g{i}'><vCard xmlns='vcard-temp'/></iq>" for i in range(100))
    return await _measure(pid, duration, _pipeline(client, gets.encode(), duration))


async def messages(opts: Options, pid: int, duration: float) -> dict:
    ctx = client_context(opts)
    stalled, sender = Client(opts, ctx, 0), Client(opts, ctx, 1)
    await stalled.login()
    ping = "<ping xmlns='urn:xmpp:ping'/>"
    stalled.send(f"<presence/><iq type='get' id='av' to='{opts.domain}'>{ping}</iq>")
    await stalled._read_until(b"id='av'")
    stop_reading(stalled)
    await sender.login()
    body = "x" * MESSAGE_BYTES
    message = f"<message to='{stalled.jid}' type='chat'><body>{body}</body></message>".encode()
    return await _measure(pid, duration, _pipeline(sender, message, duration))


async def _pipeline(client: Client, data: bytes, duration: float) -> int:
    """Write `data` again and again for `duration` seconds, as fast as the server reads."""
    sent = 0
    until = time.monotonic() + duration
    while time.monotonic() < until:
        client.writer.write(data)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.writer.drain(), max(0.01, until - time.monotonic()))
            sent += 1
    return sent


async def _measure(pid: int, duration: float, work) -> dict:
    before = rss_kib(pid)
    peak = [before]
    sampler = asyncio.ensure_future(sample(pid, time.monotonic() + duration + 1, peak))
    writes = await work
    await asyncio.sleep(1)  # what the server still had queued in its loop
    await sampler
    after = rss_kib(pid)
    return {
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak[0] / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "growth_mib": round((peak[0] - before) / 1024, 1),
        "writes_taken": writes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["vcard", "messages", "both"], default="both")
    parser.add_argument("--duration", type=float, help="seconds (default: 24 vcard, 10 messages)")
    parser.add_argument("--iterations", type=int, default=4096)
    args = parser.parse_args(argv)
    scenarios = ["vcard", "messages"] if args.scenario == "both" else [args.scenario]
    results = {}
    for name in scenarios:
        duration = args.duration or {"vcard": 24.0, "messages": 10.0}[name]
        password = secrets.token_urlsafe(12)
        with tempfile.TemporaryDirectory() as tmp:
            side = VinesSide(Path(tmp), 2, password, args.iterations)
            side.start()
            try:
                opts = Options("127.0.0.1", side.port, side.domain, PREFIX, 2, password)
                opts.ca = str(side.ca_file)
                run = vcard if name == "vcard" else messages
                results[name] = asyncio.run(run(opts, side.pid, duration))
                results[name]["duration_s"] = duration
            finally:
                side.stop()
        print(name, json.dumps(results[name]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
