"""Idle TLS sessions with stream management held for minutes: memory per session and its drift
(issue 12).

    python bench/sm_idle.py [--sessions 10000] [--hold 600] [--every 60] [--procs 2] [--json FILE]

One server process (the bundled server, `compare.VinesSide`, SQLite). `--procs` client
processes log in `--sessions` accounts (one session each: no presence between them; STARTTLS,
PLAIN), send initial presence and enable XEP-0198 with resumption, then stay silent. The
server's RSS (/proc/PID/status VmRSS) is read before the logins, once every session is in
(after `--settle` seconds), and every `--every` seconds for `--hold` seconds. Printed: KiB per
session (RSS above the empty server, divided by the sessions) at the start and at each reading,
and the drift (KiB per session since the start). At the end every session is pinged: how many
are still alive. The open-files limit is raised to its hard limit for the server and clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from compare import PREFIX, VinesSide
from loadgen import (
    LoginError,
    Options,
    client_context,
    enable_sm,
    login_many,
    rss_kib,
    split,
    still_alive,
    wait_barrier,
)

PASSWORD = "idle-password"
ITERATIONS = 4096  # logins cost PBKDF2; the memory of a session does not depend on it


async def hold_sessions(opts: Options, share: list[int], concurrency: int, barrier) -> dict:
    clients, _, errors = await login_many(opts, client_context(opts), share, concurrency)
    managed = []
    for c in clients:
        c.send("<presence/>")
    for c in clients:
        try:
            await enable_sm(c)
            managed.append(c)
        except (LoginError, OSError, ssl.SSLError) as exc:
            errors.append(f"enable: {exc}")
    await wait_barrier(barrier)  # 1: every worker is in; the parent reads RSS while they idle
    await wait_barrier(barrier)  # 2: the hold is over

    alive = sum(await asyncio.gather(*(still_alive(c, 30) for c in managed)))
    for c in clients:
        c.close()
    return {"managed": len(managed), "alive": alive, "errors": errors[:5]}


def worker(opts: Options, share: list[int], concurrency: int, barrier, queue) -> None:
    try:
        queue.put(asyncio.run(hold_sessions(opts, share, concurrency, barrier)))
    except BaseException as exc:  # report, never hang the parent
        barrier.abort()
        queue.put({"fatal": f"{type(exc).__name__}: {exc}"})


def per_session(rss: int, empty: int, sessions: int) -> float:
    return round((rss - empty) / max(sessions, 1), 2)


def measure(side: VinesSide, ns: argparse.Namespace) -> dict:
    opts = Options("127.0.0.1", side.port, side.domain, PREFIX, ns.sessions, PASSWORD)
    opts.ca = str(side.ca_file)
    pid = side.pid
    assert pid is not None
    shares = split(list(range(ns.sessions)), ns.procs)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(shares) + 1, timeout=ns.hold + 1800)
    queue = ctx.Queue()
    empty = rss_kib(pid)
    procs = [
        ctx.Process(
            target=worker, args=(opts, share, ns.concurrency // len(shares), barrier, queue)
        )
        for share in shares
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    readings: list[dict] = []
    try:
        barrier.wait()
        login_s = round(time.monotonic() - t0, 1)
        time.sleep(ns.settle)
        start = rss_kib(pid)
        print(f"{ns.sessions} sessions in {login_s} s; server RSS {empty} KiB empty", flush=True)
        began = time.monotonic()
        while True:
            rss = rss_kib(pid)
            at = round(time.monotonic() - began)
            row = {
                "at_s": at,
                "rss_kib": rss,
                "kib_per_session": per_session(rss, empty, ns.sessions),
                "drift_kib_per_session": per_session(rss, start, ns.sessions),
            }
            readings.append(row)
            print(
                f"t={at:4d} s  RSS {rss} KiB  {row['kib_per_session']} KiB/session  "
                f"drift {row['drift_kib_per_session']:+} KiB/session",
                flush=True,
            )
            if at >= ns.hold:
                break
            time.sleep(min(ns.every, max(ns.hold - at, 0.1)))
        barrier.wait()
    except Exception as exc:  # a worker failed and aborted the barrier
        print(f"aborted: {type(exc).__name__}", flush=True)
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    fatal = [r["fatal"] for r in results if "fatal" in r]
    return {
        "sessions": ns.sessions,
        "hold_s": ns.hold,
        "rss_empty_kib": empty,
        "readings": readings,
        "managed": sum(r.get("managed", 0) for r in results),
        "alive_at_end": sum(r.get("alive", 0) for r in results),
        "errors": fatal or [e for r in results for e in r.get("errors", [])][:5],
    }


def raise_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=600.0, help="seconds the sessions idle")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between readings")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the first")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=40, help="logins in flight")
    parser.add_argument("--json", type=Path, default=None)
    ns = parser.parse_args()
    raise_open_files()
    side = VinesSide(Path(tempfile.mkdtemp(prefix="sm-idle-")), ns.sessions, PASSWORD, ITERATIONS)
    side.start()
    try:
        result = measure(side, ns)
    finally:
        side.stop()
    print(
        f"managed {result['managed']}, alive at the end {result['alive_at_end']}"
        + (f"; errors {result['errors']}" if result["errors"] else ""),
        flush=True,
    )
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
