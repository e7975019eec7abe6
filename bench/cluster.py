#!/usr/bin/env python3
"""One node of our cluster against two on this machine, against Prosody in the same run.

    python bench/cluster.py                      # all three sides, ~5 minutes
    python bench/cluster.py --only 2-nodes --sweep 1000,2000,3000 --json out.json

Issue 13's benchmark. A throw-away PostgreSQL and redis-server (tests/support/postgres.py,
redis.py) back the cluster; each side gets a fresh database with the same --users accounts
(provisioned through vines_server.storage), Prosody its own account files (bench/compare.py's
ProsodySide). The sides run one after the other, each with the whole machine:

  1-node   one node of a cluster (Redis + PostgreSQL), so the store and directory are the same
           as with two and only the node count differs;
  2-nodes  two nodes, each its own `vines-server` process on a port of its own (not the shared
           SO_REUSEPORT port of `vinesctl server start --nodes 2`, where the kernel picks the
           node at random): the load generator logs each user in to the node chosen for it,
           so which messages cross nodes is decided, not drawn (--placement);
  prosody  the baseline.

For each: a warm-up, --logins PLAIN logins (STARTTLS, PLAIN, bind; the server runs PBKDF2 at
--iterations), then messages between --users users in pairs at increasing rates (--sweep) until
p99 reaches 250 ms: the highest rate below, and the highest that also lost, delayed (delivered
after a later message of its sender) and duplicated nothing. With two nodes the pairs
are split across the nodes (every message crosses). Then, on two nodes, a modest --probe-rate
with the pairs on one node and again across nodes: the extra latency of crossing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/compare.py, bench/loadgen.py
import compare
from compare import (
    ProsodySide,
    Side,
    VinesSide,
    _fmt,
    _get,
    align,
    cpu_seconds,
    ratio_cell,
    say,
)
from loadgen import node_of

SIDES = ("1-node", "2-nodes", "prosody")
P99_LIMIT_MS = 250
FAULTS = ("lost", "late", "duplicated")
# stale: an earlier step's message, stored and delivered at this step's login (shown, but
# already counted as lost by that step)
SHOWN = (*FAULTS, "stale")  # what a sweep step counts against delivery


class ClusterNode(VinesSide):
    """compare.py's server, as one node of a cluster: PostgreSQL storage and a [cluster] section.
    Its directory (config, state file, log) is its own; certificates come from the first node."""

    def __init__(self, directory: Path, node: str, dsn: str, pg, redis, iterations: int) -> None:
        self.name = f"vines-{node}"
        self.node, self.dsn, self.pg, self.redis = node, dsn, pg, redis
        super().__init__(directory, 0, "", iterations)  # accounts: once per side, in the store

    def storage_lines(self) -> list[str]:
        return [
            'backend = "postgresql"',
            f'dsn = "{self.dsn}"',
            f'dsn_password_file = "{self.pg.password_file}"',
            "[cluster]",
            f'redis = "{self.redis.url}"',
            f'password_file = "{self.redis.password_file}"',
            f'node = "{self.node}"',
        ]


class ClusterSide(Side):
    """N nodes sharing one PostgreSQL database and one Redis, each on its own port."""

    def __init__(self, directory: Path, name: str, nodes: int, pg, redis, ns, password: str):
        self.name = name
        self.pg, self.redis = pg, redis
        dsn = asyncio.run(pg.create_database())
        self.nodes = [
            ClusterNode(directory / name, f"{name}-n{k + 1}", dsn, pg, redis, ns.iterations)
            for k in range(nodes)
        ]
        first = self.nodes[0]
        for node in self.nodes[1:]:  # one certificate for the service: the clients trust one CA
            for file in ("ca.crt", "server.crt", "server.key"):
                shutil.copy2(first.root / file, node.root / file)
        self.domain, self.ca_file, self.iterations = first.domain, first.ca_file, ns.iterations
        asyncio.run(first._provision(max(ns.users, ns.logins), password))

    @property
    def pid(self) -> int | None:
        return None  # several processes: cpu() sums them

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def port(self) -> int:  # compare.loadgen's --port; --ports follows and overrides it
        return self.nodes[0].port

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def version(self) -> str:
        return self.nodes[0].version()

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the nodes, of PostgreSQL (postmaster, its live backends and
        those it reaped) and of redis-server: where the cluster's work goes."""
        postmaster = int((self.pg.data / "postmaster.pid").read_text().split()[0])
        pg = proc_cpu(postmaster, children=True)
        for pid in children_of(postmaster):
            pg += proc_cpu(pid, children=True)
        return {
            "nodes": sum(cpu_seconds(node.pid) for node in self.nodes),
            "postgresql": pg,
            "redis": proc_cpu(self.redis.process.pid),
        }


def proc_cpu(pid: int, children: bool = False) -> float:
    """utime + stime (and the reaped children's cutime + cstime) from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            parts = fh.read().rsplit(")", 1)[1].split()
    except OSError:  # a backend that just exited
        return 0.0
    ticks = int(parts[11]) + int(parts[12])
    if children:
        ticks += int(parts[13]) + int(parts[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(parent: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            out.append(int(entry.name))
    return out


def cross_share(nodes: int, users: int, placement: str) -> float:
    """The share of message pairs (2k, 2k+1) whose two users are on different nodes, in %."""
    pairs = users // 2
    crossing = sum(
        node_of(2 * k, nodes, placement) != node_of(2 * k + 1, nodes, placement)
        for k in range(pairs)
    )
    return round(100 * crossing / pairs, 1) if pairs else 0.0


def loadgen(side: Side, password: str, scenario: str, *args: str, placement="cross") -> dict:
    """compare.loadgen, spreading the users over a cluster's nodes and adding the CPU split."""
    if isinstance(side, ClusterSide):
        args = (*args, "--ports", ",".join(map(str, side.ports)), "--placement", placement)
        before = side.cpu()
    result = compare.loadgen(side, password, scenario, *args)
    if isinstance(side, ClusterSide):
        after = side.cpu()
        result["cpu_s"] = {k: round(after[k] - before[k], 3) for k in before}
        result["server_cpu_s"] = result["cpu_s"]["nodes"]
    return result


def messages(side: Side, ns, password: str, rate: float, duration: float, placement="cross"):
    return loadgen(
        side, password, "messages", "--users", str(ns.users), "--procs", str(ns.procs),
        "--rate", str(rate), "--duration", str(duration), "--warmup", str(ns.warmup),
        # SCRAM logins: no PBKDF2 storm on the server just before the measurement
        "--concurrency", str(ns.concurrency), "--mechanism", "SCRAM-SHA-1",
        placement=placement,
    )  # fmt: skip


def per_message_us(res: dict) -> dict:
    """CPU microseconds per delivered message, split (the run's logins included: approximate)."""
    received = res.get("received")
    if not received:
        return {}
    cpu = res.get("cpu_s") or {"nodes": res.get("server_cpu_s", 0)}
    return {k: round(v * 1e6 / received, 1) for k, v in cpu.items()}


def run_side(side: Side, ns, password: str) -> dict:
    nodes = len(side.ports) if isinstance(side, ClusterSide) else 1
    out: dict = {"iterations": side.iterations, "nodes": nodes}
    side.start()
    try:
        out["version"] = side.version()
        common = ["--users", str(max(ns.users, ns.logins)), "--procs", str(ns.procs)]
        say(f"{side.name}: warm-up")
        loadgen(side, password, "logins", *common, "--logins", "20")
        say(f"{side.name}: {ns.logins} logins, PLAIN")
        res = out["logins"] = loadgen(
            side, password, "logins", *common, "--logins", str(ns.logins),
            "--concurrency", str(ns.concurrency), "--mechanism", "PLAIN",
        )  # fmt: skip
        if res.get("logins"):
            res["server_cpu_ms_per_login"] = round(res["server_cpu_s"] * 1e3 / res["logins"], 2)
        out["cross_share"] = cross_share(nodes, ns.users, "cross") if nodes > 1 else None
        out["sweep"] = {}
        for rate in ns.sweep:
            say(f"{side.name}: messages, {ns.users} users at {rate:g} msg/s")
            res = messages(side, ns, password, rate, ns.sweep_duration)
            res["cpu_us_per_msg"] = per_message_us(res)
            out["sweep"][f"{rate:g}"] = res
            p99 = _get(res, ("latency", "p99_ms"))
            if p99 is None or p99 >= P99_LIMIT_MS:
                break
            res["faults"] = "/".join(str(res.get(k)) for k in SHOWN)
            out["max_rate"], out["at_max"] = res.get("sent_per_s"), res
            if not any(res.get(k) for k in FAULTS):
                out["max_rate_clean"] = res.get("sent_per_s")
        else:
            out["max_rate_capped"] = True  # every rate passed: the maximum is higher
        if nodes > 1:
            for placement in ("same", "cross"):
                say(f"{side.name}: latency at {ns.probe_rate:g} msg/s, pairs {placement} node")
                res = messages(side, ns, password, ns.probe_rate, ns.probe_duration, placement)
                res["cross_share"] = cross_share(nodes, ns.users, placement)
                res["cpu_us_per_msg"] = per_message_us(res)
                out[f"probe_{placement}"] = res
    finally:
        side.stop()
    return out


# ---- the table ----------------------------------------------------------------------------

ROWS = [
    # label, path into a side's results, higher is better?
    ("PBKDF2 iterations", ("iterations",), None),
    ("nodes", ("nodes",), None),
    ("logins/s, PLAIN", ("logins", "logins_per_s"), True),
    ("login p50 ms", ("logins", "latency", "p50_ms"), False),
    ("login p95 ms", ("logins", "latency", "p95_ms"), False),
    ("server CPU ms/login (all nodes)", ("logins", "server_cpu_ms_per_login"), False),
    ("max msg/s, p99 < 250 ms", ("max_rate",), True),
    ("  lost/late/duplicated/stale at that rate", ("at_max", "faults"), None),
    ("  % of messages crossing nodes", ("cross_share",), None),
    ("  msg latency p50 ms at that rate", ("at_max", "latency", "p50_ms"), False),
    ("  msg latency p99 ms at that rate", ("at_max", "latency", "p99_ms"), False),
    ("  CPU us/msg, nodes (approx.)", ("at_max", "cpu_us_per_msg", "nodes"), False),
    ("  CPU us/msg, PostgreSQL", ("at_max", "cpu_us_per_msg", "postgresql"), False),
    ("  CPU us/msg, Redis", ("at_max", "cpu_us_per_msg", "redis"), False),
    ("max msg/s, p99 < 250 ms, 0 lost/late/dup", ("max_rate_clean",), True),
    ("login errors", ("logins", "errors"), False),
]
RATIOS = [("2-nodes", "1-node"), ("1-node", "prosody"), ("2-nodes", "prosody")]


def _ratio(results: dict, ours: str, theirs: str, path, higher) -> str:
    return ratio_cell(*(_get(results["sides"][s], path) for s in (ours, theirs)), higher)


def table(results: dict) -> str:
    sides = [s for s in SIDES if s in results["sides"]]
    ratios = [(a, b) for a, b in RATIOS if a in sides and b in sides]
    rows = [["figure", *sides, *(f"{a} / {b}" for a, b in ratios)]]
    for label, path, higher in ROWS:
        values = [_fmt(_get(results["sides"][s], path)) for s in sides]
        rows.append([label, *values, *(_ratio(results, a, b, path, higher) for a, b in ratios)])
    lines = [results["machine"], "", *align(rows)]
    two = results["sides"].get("2-nodes", {})
    if "probe_same" in two and "probe_cross" in two:
        same, cross = two["probe_same"], two["probe_cross"]
        rate = results["settings"]["probe_rate"]
        probe = [["two nodes, messages at " + f"{rate:g} msg/s", "same node", "across", "extra"]]
        for p in ("p50_ms", "p95_ms", "p99_ms"):
            a, b = _get(same, ("latency", p)), _get(cross, ("latency", p))
            extra = f"{b - a:+.1f}" if a is not None and b is not None else "-"
            probe.append([f"latency {p.replace('_', ' ')}", _fmt(a), _fmt(b), extra])
        for fault in SHOWN:
            probe.append([fault, _fmt(same.get(fault)), _fmt(cross.get(fault)), ""])
        probe.append(["% crossing", _fmt(same["cross_share"]), _fmt(cross["cross_share"]), ""])
        for part in ("nodes", "postgresql", "redis"):
            a, b = (_get(r, ("cpu_us_per_msg", part)) for r in (same, cross))
            extra = f"{b - a:+.1f}" if a is not None and b is not None else "-"
            probe.append([f"CPU us/msg, {part}", _fmt(a), _fmt(b), extra])
        lines += ["", *align(probe)]
    for s in sides:
        res = results["sides"][s]
        if "error" in res:
            lines.append(f"{s}: {res['error']}")
        if res.get("max_rate_capped"):
            lines.append(f"{s}: every sweep rate passed; the maximum is above the highest tried")
        for key, step in [("logins", res.get("logins")), *res.get("sweep", {}).items()]:
            if isinstance(step, dict) and step.get("error"):
                lines.append(f"{s} {key}: {step['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=SIDES, help="run this side (repeatable)")
    p.add_argument("--users", type=int, default=400, help="message users (pairs)")
    p.add_argument("--logins", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument(
        "--sweep",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[250, 500, 750, 1000, 1500, 2000, 2500, 3000, 4000],
        help="message rates tried in turn (msg/s) until p99 reaches 250 ms: the highest below,"
        " and the highest that also lost, delayed past a later one and duplicated nothing",
    )
    p.add_argument("--sweep-duration", type=float, default=5.0, help="measured seconds per rate")
    p.add_argument("--warmup", type=float, default=2.0, help="messages: unmeasured seconds first")
    p.add_argument("--probe-rate", type=float, default=200.0, help="latency of crossing: msg/s")
    p.add_argument("--probe-duration", type=float, default=8.0, help="latency of crossing: s")
    p.add_argument("--procs", type=int, default=2, help="load generator processes")
    p.add_argument("--iterations", type=int, default=10_000, help="PBKDF2 iterations, every side")
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ns = p.parse_args(argv)

    # tests.support: importing compare put the repository's root on the path
    from tests.support.postgres import PostgresInstance, postgres_unavailable
    from tests.support.redis import RedisInstance, redis_unavailable

    order = [s for s in SIDES if not ns.only or s in ns.only]
    if any(s != "prosody" for s in order):
        reason = postgres_unavailable() or redis_unavailable()
        if reason:
            print(f"cannot run the cluster: {reason}", file=sys.stderr)
            return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * max(ns.users, ns.concurrency) + 1024
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    password = secrets.token_urlsafe(16)
    tmp = Path(tempfile.mkdtemp(prefix="vines-cluster-bench-"))
    results: dict = {"machine": compare.machine(), "sides": {}, "settings": vars(ns)}
    pg = redis = None
    try:
        if any(s != "prosody" for s in order):
            say("starting PostgreSQL and Redis")
            pg, redis = PostgresInstance.start(), RedisInstance.create()
        for name in order:
            accounts = max(ns.users, ns.logins)
            say(f"{name}: provisioning {accounts} users")

            def work(name=name, accounts=accounts) -> dict:
                if name == "prosody":
                    side: Side = ProsodySide(tmp, accounts, password, ns.iterations)
                else:
                    side = ClusterSide(tmp, name, SIDES.index(name) + 1, pg, redis, ns, password)
                return run_side(side, ns, password)

            compare.run_guarded(results, name, work)
    finally:
        if redis is not None:
            redis.close()
        if pg is not None:
            pg.stop()
        if ns.keep:
            say(f"files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    compare.report(results, table(results), ns.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
