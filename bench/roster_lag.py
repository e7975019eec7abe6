"""Event loop lag while a large roster is fetched (issue 8, section 5).

Starts the bundled server in a child process with one account whose roster holds N items (put
straight into the store), then a client fetches that roster again and again while a second
client pings the server every 5 ms. Measured:

- the server's own event loop lag: a task in the server process sleeps 1 ms at a time and
  records how late it wakes, during the fetches only (max and p99, ms);
- the other client's ping round trips during the fetches, next to an idle baseline (ms);
- each roster fetch: wall time and size.

    python bench/roster_lag.py [--items 2000] [--fetches 20] [--backend sqlite|memory]

To compare with an older tree, put its `server/` first on the path as `vines_server`
(e.g. `git archive main server | tar -x -C /tmp/old && ln -s server /tmp/old/vines_server`,
then `PYTHONPATH=/tmp/old python bench/roster_lag.py`); keys the old Limits lacks are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Client, Options, client_context, percentile

DOMAIN = "vines.test"
PASSWORD = "roster-lag-bench"
ITERATIONS = 4096


def serve(directory: str, items: int, backend: str, ports, measuring, done, results) -> None:
    """The server process: fills the roster, reports its port, measures its own loop lag."""
    from cryptography.hazmat.primitives import serialization
    from vines_server import certs, config
    from vines_server.server import Server
    from vines_server.storage.base import RosterItem
    from vines_server.xmpp.sasl.credentials import derive_all

    root = Path(directory)
    ca_cert, ca_key = certs.make_ca("roster lag CA")
    (root / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert, key = certs.make_certificate([DOMAIN], issuer=(ca_cert, ca_key))
    certs.write_pem(cert, key, root / "server.crt", root / "server.key")
    known = {f.name for f in fields(config.Limits)}
    limits = {"pbkdf2_iterations": ITERATIONS, "roster_items": max(items, 1)}
    raw = {
        "server": {"log_level": "warning"},
        "domains": {
            DOMAIN: {"certificate": str(root / "server.crt"), "key": str(root / "server.key")}
        },
        "listeners": {"bind": ["127.0.0.1"], "c2s_port": 0, "c2s_direct_tls_port": 0},
        "storage": {"backend": backend, "path": str(root / "vines.sqlite")},
        "limits": {k: v for k, v in limits.items() if k in known},
    }

    async def main() -> None:
        server = Server(config.parse(raw, root / "vines.toml"))
        await server.start()
        storage = server.storage
        creds = derive_all(PASSWORD, ITERATIONS)
        for user in ("user0", "user1"):
            await storage.create_account(f"{user}@{DOMAIN}", creds)
        await asyncio.gather(
            *(
                storage.put_roster_item(
                    f"user0@{DOMAIN}",
                    RosterItem(f"contact{i:06}@example.org", f"Contact {i}", "both", groups=("g",)),
                )
                for i in range(items)
            )
        )
        lags: list[float] = []

        async def monitor() -> None:
            loop = asyncio.get_running_loop()
            while True:
                start = loop.time()
                await asyncio.sleep(0.001)
                if measuring.is_set():
                    lags.append(loop.time() - start - 0.001)

        task = asyncio.ensure_future(monitor())
        port = next(li.port for li in server.listening if li.kind == "c2s-starttls")
        ports.put(port)
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        task.cancel()
        results.put(sorted(lags))
        await server.stop()

    asyncio.run(main())


class Pinger:
    """Pings the server every 5 ms from another account and keeps the round trips."""

    def __init__(self, client: Client) -> None:
        self.client, self.rtts, self.n = client, [], 0
        self.stop = asyncio.Event()

    async def run(self) -> list[float]:
        self.rtts, self.stop = [], asyncio.Event()
        while not self.stop.is_set():
            self.n += 1
            start = time.perf_counter()
            iq = f"<iq type='get' id='p{self.n}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"
            self.client.send(iq)
            await self.client._read_until(re.compile(rf"<iq[^>]*id='p{self.n}'".encode()))
            self.rtts.append(time.perf_counter() - start)
            await asyncio.sleep(0.005)
        return sorted(self.rtts)


async def measure(opts: Options, fetches: int, measuring) -> dict:
    ctx = client_context(opts)
    owner, pinger = Client(opts, ctx, 0), Pinger(Client(opts, ctx, 1))
    await owner.login()
    await pinger.client.login()
    idle = asyncio.ensure_future(pinger.run())
    await asyncio.sleep(1.0)
    pinger.stop.set()
    idle_rtts = await idle
    measuring.set()  # the server records its loop lag from here ...
    busy = asyncio.ensure_future(pinger.run())
    times, size = [], 0
    for k in range(fetches):
        start = time.perf_counter()
        owner.send(f"<iq type='get' id='r{k}'><query xmlns='jabber:iq:roster'/></iq>")
        data = await owner._read_until(re.compile(rb"</query></iq>|<query[^>]*/></iq>"))
        times.append(time.perf_counter() - start)
        size = len(data)
    pinger.stop.set()
    busy_rtts = await busy
    measuring.clear()  # ... to here
    owner.close()
    pinger.client.close()
    return {"idle": idle_rtts, "rtts": busy_rtts, "fetch": sorted(times), "bytes": size}


def ms(values: list[float], p: float | None = None) -> float | None:
    if not values:
        return None
    value = values[-1] if p is None else percentile(values, p)
    return round(value * 1000, 2) if value is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--fetches", type=int, default=20)
    parser.add_argument("--backend", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="roster-lag-") as directory:
        ports, results = mp.Queue(), mp.Queue()
        measuring, done = mp.Event(), mp.Event()
        child = mp.Process(
            target=serve,
            args=(directory, args.items, args.backend, ports, measuring, done, results),
        )
        child.start()
        try:
            port = ports.get(timeout=600)
            opts = Options("127.0.0.1", port, DOMAIN, "user", 2, PASSWORD, ca=f"{directory}/ca.crt")

            out = asyncio.run(measure(opts, args.fetches, measuring))
            done.set()
            lags = results.get(timeout=60)
        finally:
            done.set()
            child.join(30)
    report = {
        "items": args.items,
        "backend": args.backend,
        "roster_bytes": out["bytes"],
        "fetch_ms": {"p50": ms(out["fetch"], 50), "max": ms(out["fetch"])},
        "server_loop_lag_ms": {"p99": ms(lags, 99), "max": ms(lags)},
        "ping_rtt_ms": {
            "p50": ms(out["rtts"], 50),
            "p99": ms(out["rtts"], 99),
            "max": ms(out["rtts"]),
        },
        "idle_ping_rtt_ms": {"p50": ms(out["idle"], 50), "max": ms(out["idle"])},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
