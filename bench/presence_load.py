"""Does the server hold up with many users online and an admin watching? (issue 5)

Starts the bundled server, holds N available sessions (default 10 000) from loader processes,
then an admin starts the presence feed and subscribes to the server's load. Measured:

- snapshot: time from the feed command to the snapshot's last message, and its size;
- burst: M more logins at once (default 1000) while the feed runs: logins/s, and how long until
  every new session has appeared in the feed;
- stall: round trips of pings an admin sends every 20 ms throughout, as p50/p99/max: a server
  that stalls under the burst shows it here;
- memory of the server with everything connected.

    python bench/presence_load.py [--sessions 10000] [--burst 1000] [--json out.json]

No Prosody baseline: no other server has this feed; the ping round trip while idle, measured in
the same run, is the baseline the figures under load are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import PREFIX, VinesSide
from loadgen import Options, client_context, login_many, percentile, rss_kib

NS_FEED = "urn:vinesctl:presence-feed:0"


def raise_fd_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold(opts: Options, indices: list[int], ready, release) -> None:
    """A loader process: log in its share, send presence, hold until released."""
    raise_fd_limit()

    async def main() -> None:
        clients, _, errors = await login_many(opts, client_context(opts), indices, 50)
        for client in clients:
            client.send("<presence/>")
        ready.put((len(clients), errors[:3]))
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        for client in clients:
            client.close()

    asyncio.run(main())


def start_holders(opts: Options, indices: list[int], procs: int):
    ready, release = multiprocessing.Queue(), multiprocessing.Event()
    shares = [indices[i::procs] for i in range(procs)]
    workers = [
        multiprocessing.Process(target=hold, args=(opts, share, ready, release)) for share in shares
    ]
    for worker in workers:
        worker.start()
    return workers, ready, release


async def admin_client(side: VinesSide, password: str):
    import slixmpp
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

    client = slixmpp.ClientXMPP(f"admin@{side.domain}/bench", password)
    client.ca_certs = str(side.ca_file)
    client.enable_direct_tls = False
    for plugin in ("xep_0050", "xep_0199"):
        client.register_plugin(plugin)
    feed = {"seen": set(), "snapshot_done": asyncio.Event(), "messages": 0, "gaps": 0, "seq": 0}

    def on_feed(msg) -> None:
        el = msg.xml.find(f"{{{NS_FEED}}}feed")
        seq = int(el.get("seq"))
        feed["gaps"] += seq != feed["seq"] + 1
        feed["seq"] = seq
        feed["messages"] += 1
        for fwd in el:
            presence = fwd.find("{jabber:client}presence")
            if presence is not None and presence.get("type") is None:
                feed["seen"].add(presence.get("from"))
        if el.get("last") == "true":
            feed["snapshot_done"].set()

    client.register_handler(
        Callback("feed", MatchXPath(f"{{jabber:client}}message/{{{NS_FEED}}}feed"), on_feed)
    )
    started = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: started.set_result(None))
    client.connect(host="127.0.0.1", port=side.port)
    await asyncio.wait_for(started, 30)
    client.send_presence()
    return client, feed


async def pinger(client, domain: str, rtts: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await client.plugin["xep_0199"].send_ping(domain, timeout=30)
        rtts.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.02)


def summary(rtts: list[float]) -> dict[str, float | None]:
    values = sorted(rtts)
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": values[-1] if values else None,
        "n": len(values),
    }


async def measure(side: VinesSide, password: str, ns: argparse.Namespace) -> dict:
    opts = Options("127.0.0.1", side.port, side.domain, PREFIX, ns.sessions + ns.burst, password)
    out: dict = {"sessions": ns.sessions, "burst": ns.burst}
    admin, feed = await admin_client(side, password)
    rtts_idle: list[float] = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(pinger(admin, side.domain, rtts_idle, stop))
    await asyncio.sleep(2)
    stop.set()
    await task
    out["ping_ms_idle"] = summary(rtts_idle)

    t0 = time.perf_counter()
    holders, ready, release = start_holders(opts, list(range(ns.sessions)), ns.procs)
    opened = 0
    for _ in holders:
        count, errors = await asyncio.get_running_loop().run_in_executor(None, ready.get)
        opened += count
        if errors:
            out.setdefault("login_errors", []).extend(errors)
    out["hold_login_s"] = round(time.perf_counter() - t0, 2)
    out["held"] = opened
    await asyncio.sleep(2)
    out["server_rss_kib"] = rss_kib(side.pid)

    rtts: list[float] = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(pinger(admin, side.domain, rtts, stop))
    t0 = time.perf_counter()
    await admin.plugin["xep_0050"].send_command(side.domain, "urn:vinesctl:presence-feed")
    await asyncio.wait_for(feed["snapshot_done"].wait(), 120)
    out["snapshot_s"] = round(time.perf_counter() - t0, 3)
    out["snapshot_sessions"] = len(feed["seen"])
    out["snapshot_messages"] = feed["messages"]

    before = len(feed["seen"])
    t0 = time.perf_counter()
    burst_indices = list(range(ns.sessions, ns.sessions + ns.burst))
    burst, burst_ready, burst_release = start_holders(opts, burst_indices, ns.procs)
    burst_opened = 0
    for _ in burst:
        count, _errors = await asyncio.get_running_loop().run_in_executor(None, burst_ready.get)
        burst_opened += count
    out["burst_logins_per_s"] = round(burst_opened / (time.perf_counter() - t0), 1)
    deadline = time.perf_counter() + 60
    while len(feed["seen"]) < before + burst_opened and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    out["burst_in_feed_s"] = round(time.perf_counter() - t0, 3)
    out["burst_seen"] = len(feed["seen"]) - before
    stop.set()
    await task
    out["ping_ms_under_load"] = summary(rtts)
    out["feed_gaps"] = feed["gaps"]
    out["server_rss_kib_after"] = rss_kib(side.pid)

    for event in (release, burst_release):
        event.set()
    for worker in holders + burst:
        worker.join(30)
    admin.disconnect()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=2, help="loader processes")
    parser.add_argument("--iterations", type=int, default=4096, help="PBKDF2 for bench users")
    parser.add_argument("--json", help="write the results here too")
    ns = parser.parse_args(argv)
    raise_fd_limit()
    password = secrets.token_urlsafe(12)
    with tempfile.TemporaryDirectory() as tmp:
        side = VinesSide(Path(tmp), ns.sessions + ns.burst, password, ns.iterations)
        asyncio.run(_add_admin(side, password))
        side.start()
        try:
            results = asyncio.run(measure(side, password, ns))
        finally:
            side.stop()
    print(json.dumps(results, indent=2))
    if ns.json:
        Path(ns.json).write_text(json.dumps(results, indent=2))
    return 0


async def _add_admin(side: VinesSide, password: str) -> None:
    from vines_server.config import load
    from vines_server.storage import open_storage
    from vines_server.xmpp.sasl.credentials import derive_all

    store = open_storage(load(side.config_file).storage)
    await store.open()
    try:
        await store.create_account(f"admin@{side.domain}", derive_all(password, side.iterations))
    finally:
        await store.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
