#!/usr/bin/env python3
"""Run the same load against our bundled server and against Prosody in one go; print ratios.

    python bench/compare.py                      # both servers, default sizes (~10 minutes)
    python bench/compare.py --only prosody       # the baseline alone
    python bench/compare.py --sessions 2000 --no-sweep --no-console   # a quicker look

For each server, in turn (never both at once, so each has the whole machine): write its own config
in a temporary directory, provision --users accounts (Prosody: its internal_hashed account files;
ours: the SQLite store through vines_server.storage), start it fresh, then run bench/loadgen.py:

  1. warm-up: a few logins (first-use costs such as lazy imports stay out of the memory figure);
  2. idle: --sessions authenticated idle sessions (10 000), server RSS before/after (fresh
     server), read --settle seconds after the last login; then the server is restarted and
     warmed up again, so the rest starts from a clean state; ours again with stream
     management (XEP-0198) enabled on every session, and a restart; and once more with every
     session's SM and presence in one burst after the last login, and a restart;
  3. logins with SASL PLAIN (the server runs PBKDF2 on every login), 20 concurrent;
  4. logins with SCRAM-SHA-1 (the server only checks a proof; the client does the PBKDF2);
  5. messages: --users users (logged in with SCRAM-SHA-1) in pairs at --rate msg/s for
     --duration seconds after --warmup seconds; then the --sweep of increasing rates (up to
     24 000 msg/s, --sweep-procs generator processes), stopping at the first that fails.
     The message runs pin the server (all its threads) to one core and the generator to the
     others (--no-pin: the scheduler's choice): the target is one node on one core, and the
     server should not wait for a core its own load generator holds.

Then the console's targets, each by its own script: bench/cli_startup.py (`vinesctl --help`
against `import click`) and bench/user_add.py (`vinesctl user add` against the bundled server).
Last, a table of issue 14's targets: our figure, Prosody's, the ratio, the target, met or not.

Both servers get the same certificate set-up (a generated test CA, an ECDSA P-256 leaf) and the
same PBKDF2 iteration count unless --iterations says otherwise (Prosody's default is 10 000).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import pyexpat
import resource
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADGEN = ROOT / "bench" / "loadgen.py"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.support.prosody

from loadgen import rss_kib  # noqa: E402 (the bench directory)

PREFIX = "bench"
# up to past issue 14's 20 000 msg/s; a side stops at its first failing rate
DEFAULT_SWEEP = [2000.0, 6000.0, 10_000.0, 14_000.0, 18_000.0, 20_000.0, 24_000.0]


class Side:
    name = ""
    stream_management = False  # XEP-0198 offered (idle is measured with it too)
    domain = ""
    host = "127.0.0.1"
    port = 0
    ca_file: Path
    iterations = 0

    @property
    def pid(self) -> int | None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class ProsodySide(Side):
    name = "prosody"

    def __init__(self, directory: Path, users: int, password: str, iterations: int) -> None:
        from tests.support.prosody import ProsodyInstance

        self.instance = ProsodyInstance(directory, domain="prosody.test", log_level="warn")
        self.domain = self.instance.domain
        self.port = self.instance.port
        self.ca_file = self.instance.ca_file
        self.iterations = iterations
        self.instance.provision([f"{PREFIX}{i}" for i in range(users)], password, iterations)

    @property
    def pid(self) -> int | None:
        return self.instance.pid

    def start(self) -> None:
        self.instance.start()

    def stop(self) -> None:
        self.instance.stop()

    def version(self) -> str:
        for line in self.instance.log_file.read_text(errors="replace").splitlines():
            if "Prosody version" in line:
                return line.rsplit("version", 1)[1].strip()
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "prosody"], capture_output=True)
        return out.stdout.decode() or "?"


class VinesSide(Side):
    name = "vines"
    stream_management = True

    def __init__(self, directory: Path, users: int, password: str, iterations: int) -> None:
        import vines_server
        from cryptography.hazmat.primitives import serialization
        from vines_server import certs
        from vines_server.config import Limits

        # run as installed from a wheel, whose bytecode pip compiled: from a checkout with
        # PYTHONDONTWRITEBYTECODE set (or sources newer than their .pyc) every start compiles
        # the modules again, and the fresh RSS came out ~0.4 MB higher for it
        package = Path(vines_server.__file__).parent
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
        self.root = directory / self.name
        self.root.mkdir(parents=True)
        self.domain = "vines.test"
        self.iterations = iterations
        ca_cert, ca_key = certs.make_ca("vines bench CA")
        self.ca_file = self.root / "ca.crt"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert, key = certs.make_certificate([self.domain], issuer=(ca_cert, ca_key))
        certs.write_pem(cert, key, self.root / "server.crt", self.root / "server.key")
        limits = {"pbkdf2_iterations": iterations}
        known = {f.name for f in fields(Limits)}
        if "connections_per_ip" in known:
            limits["connections_per_ip"] = 1_000_000  # every client comes from 127.0.0.1
        if "auth_failures_per_ip" in known:
            limits["auth_failures_per_ip"] = 1_000_000
        if "read_rate" in known:  # one client may send as fast as it can: Prosody's default
            limits["read_rate"] = 1 << 30
        lines = [
            "[server]",
            f'admins = ["admin@{self.domain}"]',
            'log_level = "warning"',
            f"[domains.{_q(self.domain)}]",
            'certificate = "server.crt"',
            'key = "server.key"',
            "[listeners]",
            'bind = ["127.0.0.1"]',
            "c2s_port = 0",
            "c2s_direct_tls_port = 0",
            "[storage]",
            *self.storage_lines(),
            "[limits]",
            *(f"{k} = {v}" for k, v in limits.items()),
            "",
        ]
        self.config_file = self.root / "vines.toml"
        self.config_file.write_text("\n".join(lines))
        self.state_file = self.root / "vines.state.json"
        self.process: subprocess.Popen[bytes] | None = None
        if users:
            asyncio.run(self._provision(users, password))

    def storage_lines(self) -> list[str]:
        """The [storage] keys, and any section after it (bench/cluster.py's nodes add theirs)."""
        return ['backend = "sqlite"', 'path = "vines.sqlite"']

    async def _provision(self, users: int, password: str) -> None:
        from vines_server.config import load
        from vines_server.storage import open_storage
        from vines_server.xmpp.sasl.credentials import derive_all

        cfg = load(self.config_file)
        credentials = derive_all(password, self.iterations)  # once: a login costs the same
        store = open_storage(cfg.storage)
        await store.open()
        try:
            for i in range(users):
                await store.create_account(f"{PREFIX}{i}@{self.domain}", credentials)
        finally:
            await store.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 20.0) -> None:
        self.state_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vines_server", "--config", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=open(self.root / "stdout.log", "ab"),  # noqa: SIM115 (child keeps it)
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "stdout.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"vines server exited ({self.process.returncode}): {log}")
            if self.state_file.exists():
                state = json.loads(self.state_file.read_text())
                for li in state["listeners"]:
                    if li["kind"] == "c2s-starttls":
                        self.port = li["port"]
                        return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("vines server did not write its state file in time")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def version(self) -> str:
        from vines_server import __version__

        return __version__


def _q(name: str) -> str:
    return json.dumps(name) if not name.replace("-", "").isalnum() else name


def loadgen(
    side: Side,
    password: str,
    scenario: str,
    *args: str,
    timeout: float = 900,
    cpus: set[int] | None = None,
) -> dict:
    """Run bench/loadgen.py against `side` (its processes on `cpus`, if given); its JSON result
    with the server's and the generator's CPU time over the run."""
    cmd = [
        sys.executable,
        str(LOADGEN),
        scenario,
        "--host",
        side.host,
        "--port",
        str(side.port),
        "--domain",
        side.domain,
        "--ca",
        str(side.ca_file),
        "--users-prefix",
        PREFIX,
        *args,
    ]
    env = dict(os.environ, LOADGEN_PASSWORD=password)
    cpu_before, loop_before = cpu_seconds(side.pid), cpu_seconds(side.pid, side.pid)
    helpers_before = helpers_cpu_seconds(side.pid)
    generator_before = children_cpu_seconds()
    pin = None if cpus is None else lambda: os.sched_setaffinity(0, cpus)
    done = subprocess.run(
        cmd, capture_output=True, env=env, timeout=timeout, text=True, preexec_fn=pin
    )
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": f"loadgen exited {done.returncode}: {done.stderr.strip()[-500:]}"}
    # the server's helper processes (our PBKDF2 helpers) count as the server
    helpers = helpers_cpu_seconds(side.pid) - helpers_before
    result["server_cpu_s"] = round(cpu_seconds(side.pid) - cpu_before + helpers, 3)
    result["server_helpers_cpu_s"] = round(helpers, 3)
    result["server_helpers_rss_kib"] = helpers_rss_kib(side.pid)
    # the main thread (the event loop) apart from the others (storage, PBKDF2): what the
    # second core does; and the generator's own CPU, on the same cores
    result["server_loop_cpu_s"] = round(cpu_seconds(side.pid, side.pid) - loop_before, 3)
    result["loadgen_cpu_s"] = round(children_cpu_seconds() - generator_before, 3)
    return result


def pin_server(pid: int | None) -> set[int] | None:
    """Pin the server's threads (those to come inherit it) to its own core; the other cores,
    for the generator. None (nothing pinned) on a single core or without a server process."""
    cores = sorted(os.sched_getaffinity(0))
    if pid is None or len(cores) < 2:
        return None
    for task in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(task), {cores[0]})
    return set(cores[1:])


def quiet_seconds() -> float:
    """How long after the warm-up's last connection closed our server may still hold what the
    logins freed: its heap trim runs at most every INTERVAL seconds, DELAY seconds after the
    request (vines_server.memory). The idle run's first reading (fresh RSS) waits as long, so it
    is taken, like its second (--settle after the last login), of a quiet server; read earlier
    it caught the warm-up's garbage (~0.4 MB) on some runs and not on others. Both sides wait."""
    from vines_server.memory import DELAY, INTERVAL

    return DELAY + INTERVAL + 0.5


def cpu_seconds(pid: int | None, thread: int | None = None) -> float:
    """User + system CPU time of a process (all its threads), from /proc/PID/stat; of one of
    its threads with `thread` (the main thread's id is the pid)."""
    if not pid:
        return 0.0
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    try:
        with open(path) as fh:
            parts = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # the server exited
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int | None) -> list[int]:
    """The live child processes of `pid` (our server's PBKDF2 helpers)."""
    found = []
    for entry in os.listdir("/proc") if pid else ():
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            if ppid == pid:
                found.append(int(entry))
    return found


def helpers_cpu_seconds(pid: int | None) -> float:
    return sum(cpu_seconds(child) for child in child_pids(pid))


def helpers_rss_kib(pid: int | None) -> int:
    total = 0
    for child in child_pids(pid):
        with contextlib.suppress(FileNotFoundError, RuntimeError):  # gone, or not yet reaped
            total += rss_kib(child)
    return total


def cpu_bound_rate(res: dict) -> float | None:
    """Logins/s that the CPU per login allows on this machine's cores: the main thread (event
    loop) can use one core, server and generator together all of them. CPU per login moves much
    less than the measured rate when other work shares the machine (Prosody's rate the most)."""
    cores = os.cpu_count() or 1
    together = (res["server_cpu_ms_per_login"] + res["loadgen_cpu_ms_per_login"]) / cores
    ms = max(res["server_loop_cpu_ms_per_login"], together)
    return round(1e3 / ms, 1) if ms else None


def children_cpu_seconds() -> float:
    """User + system CPU time of the finished children (the load generator and its workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_side(side: Side, ns: argparse.Namespace, password: str) -> dict:
    common = ["--users", str(ns.users), "--procs", str(ns.procs)]
    # message runs log their users in with SCRAM: cheaper for the server than PLAIN, so a
    # PBKDF2 storm just before the measurement does not colour it
    message_login = ["--concurrency", str(ns.concurrency), "--mechanism", "SCRAM-SHA-1"]
    out: dict = {"iterations": side.iterations}
    side.start()
    try:
        out["version"] = side.version()
        idle = [
            "--users", str(max(ns.users, ns.sessions)), "--procs", str(ns.procs),
            "--sessions", str(ns.sessions), "--concurrency", str(ns.concurrency),
            "--settle", str(ns.settle),
        ]  # fmt: skip

        def idle_run(key: str, what: str, *flags: str) -> None:
            """A warm-up, an idle run on the quiet server, and a restart: thousands of closed
            sessions must not weigh on what follows."""
            say(f"{side.name}: warm-up")
            loadgen(side, password, "logins", *common, "--logins", "20")
            time.sleep(quiet_seconds())  # the fresh reading is of a quiet server too
            say(f"{side.name}: {what}, {ns.sessions} sessions")
            out[key] = loadgen(side, password, "idle", *idle, *flags, "--pid", str(side.pid))
            side.stop()
            side.start()

        idle_run("idle", "idle")
        if side.stream_management and not ns.no_sm_idle:
            idle_run("idle_sm", "idle with stream management", "--sm")
            if not ns.no_burst_idle:
                what = "idle with SM, every client's SM and presence in one burst"
                idle_run("idle_sm_burst", what, "--sm", "--burst")
        loadgen(side, password, "logins", *common, "--logins", "20")
        for mech in ("PLAIN", "SCRAM-SHA-1"):
            say(f"{side.name}: {ns.logins} logins, {mech}")
            out[f"logins_{mech}"] = loadgen(
                side, password, "logins", *common, "--logins", str(ns.logins),
                "--concurrency", str(ns.concurrency), "--mechanism", mech,
            )  # fmt: skip
            res = out[f"logins_{mech}"]
            if res.get("logins"):
                per_login = 1e3 / res["logins"]
                res["server_cpu_ms_per_login"] = round(res["server_cpu_s"] * per_login, 2)
                loop = res["server_loop_cpu_s"]
                res["server_loop_cpu_ms_per_login"] = round(loop * per_login, 2)
                helpers = res["server_helpers_cpu_s"]
                res["server_threads_cpu_ms_per_login"] = round(
                    (res["server_cpu_s"] - loop - helpers) * per_login, 2
                )
                res["server_helpers_cpu_ms_per_login"] = round(helpers * per_login, 2)
                # the generator's own figure leaves out its start-up (~0.15 s of CPU per run)
                res["loadgen_cpu_ms_per_login"] = res.get(
                    "generator_cpu_ms_per_login", round(res["loadgen_cpu_s"] * per_login, 2)
                )
                res["cpu_bound_logins_per_s"] = cpu_bound_rate(res)
        generator_cpus = None if ns.no_pin else pin_server(side.pid)
        out["pinned"] = generator_cpus is not None
        say(f"{side.name}: messages, {ns.users} users at {ns.rate:g} msg/s")
        out["messages"] = loadgen(
            side, password, "messages", *common, "--rate", str(ns.rate),
            "--duration", str(ns.duration), "--warmup", str(ns.warmup), *message_login,
            cpus=generator_cpus,
        )  # fmt: skip
        res, per_login = (
            out["messages"],
            _get(out, ("logins_SCRAM-SHA-1", "server_cpu_ms_per_login")),
        )
        if res.get("received") and per_login is not None:
            # the run includes logging its users in: subtract what that costs (SCRAM logins)
            cpu = res["server_cpu_s"] - per_login / 1e3 * res["users"]
            res["server_cpu_us_per_msg"] = round(max(cpu, 0) * 1e6 / res["received"], 1)
        if ns.sweep:
            out["sweep"] = {}
            for rate in ns.sweep:
                say(f"{side.name}: sweep, {ns.users} users at {rate:g} msg/s")
                res = loadgen(
                    side, password, "messages", "--users", str(ns.users),
                    "--procs", str(ns.sweep_procs), "--rate", str(rate),
                    "--duration", str(ns.sweep_duration), "--warmup", str(ns.warmup),
                    *message_login, cpus=generator_cpus,
                )  # fmt: skip
                out["sweep"][f"{rate:g}"] = res
                p99 = _get(res, ("latency", "p99_ms"))
                if res.get("lost") or res.get("duplicated") or p99 is None or p99 >= 250:
                    break
                if not offered(res, rate, ns.sweep_duration + ns.warmup):
                    res["error"] = "the load generator could not offer this rate"
                    break
                out["max_rate"] = rate
            else:
                out["max_rate_capped"] = True  # every rate passed: the maximum is higher
    finally:
        side.stop()
    return out


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---- the table ----------------------------------------------------------------------------

ROWS = [
    # label, path into a side's results, higher is better?
    ("PBKDF2 iterations", ("iterations",), None),
    ("logins/s, PLAIN", ("logins_PLAIN", "logins_per_s"), True),
    ("login p50 ms, PLAIN", ("logins_PLAIN", "latency", "p50_ms"), False),
    ("login p95 ms, PLAIN", ("logins_PLAIN", "latency", "p95_ms"), False),
    ("logins/s, SCRAM-SHA-1", ("logins_SCRAM-SHA-1", "logins_per_s"), True),
    ("login p50 ms, SCRAM-SHA-1", ("logins_SCRAM-SHA-1", "latency", "p50_ms"), False),
    ("login p95 ms, SCRAM-SHA-1", ("logins_SCRAM-SHA-1", "latency", "p95_ms"), False),
    ("server CPU ms/login, PLAIN", ("logins_PLAIN", "server_cpu_ms_per_login"), False),
    ("server CPU ms/login, SCRAM-SHA-1", ("logins_SCRAM-SHA-1", "server_cpu_ms_per_login"), False),
    ("  main thread (event loop), PLAIN", ("logins_PLAIN", "server_loop_cpu_ms_per_login"), False),
    (
        "  other threads (storage; PBKDF2 without helpers), PLAIN",
        ("logins_PLAIN", "server_threads_cpu_ms_per_login"),
        False,
    ),
    (
        "  helper processes (PBKDF2), PLAIN",
        ("logins_PLAIN", "server_helpers_cpu_ms_per_login"),
        False,
    ),
    ("  helper processes' RSS KiB", ("logins_PLAIN", "server_helpers_rss_kib"), False),
    ("load generator CPU ms/login, PLAIN", ("logins_PLAIN", "loadgen_cpu_ms_per_login"), False),
    ("logins/s the CPU allows, PLAIN (est.)", ("logins_PLAIN", "cpu_bound_logins_per_s"), True),
    ("msg/s sent", ("messages", "sent_per_s"), True),
    ("msgs lost", ("messages", "lost"), False),
    ("msgs duplicated", ("messages", "duplicated"), False),
    ("msgs out of order", ("messages", "out_of_order"), False),
    ("msg latency p50 ms", ("messages", "latency", "p50_ms"), False),
    ("msg latency p95 ms", ("messages", "latency", "p95_ms"), False),
    ("msg latency p99 ms", ("messages", "latency", "p99_ms"), False),
    ("server CPU us/message (approx.)", ("messages", "server_cpu_us_per_msg"), False),
    ("load generator CPU us/message", ("messages", "generator_cpu_us_per_msg"), False),
    ("max msg/s, p99 < 250 ms, 0 lost (--sweep)", ("max_rate",), True),
    ("idle sessions alive", ("idle", "alive"), True),
    ("KiB per idle session", ("idle", "kib_per_session"), False),
    ("server RSS fresh KiB", ("idle", "rss_before_kib"), False),
    ("server RSS + sessions KiB", ("idle", "rss_after_kib"), False),
    ("KiB per idle session, with SM", ("idle_sm", "kib_per_session"), False),
    ("idle sessions alive, with SM", ("idle_sm", "alive"), True),
    ("KiB per idle session, SM, after one burst", ("idle_sm_burst", "kib_per_session"), False),
    ("login errors (all runs)", ("errors",), False),
]


def _get(data: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def ratio_cell(ours, theirs, higher: bool | None) -> str:
    """ours / theirs, marked "better" or "worse" by the figure's direction; "-" without both."""
    if not (isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs):
        return "-"
    ratio = ours / theirs
    mark = ""
    if higher is not None and abs(ratio - 1) >= 0.02:  # within 2 %: noise
        mark = " (better)" if (ratio > 1) == higher else " (worse)"
    return f"{ratio:.2f}{mark}"


def align(rows: list[list[str]]) -> list[str]:
    """Rows of cells as text columns: the first left-aligned, the others right; a rule under
    the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def offered(res: dict, rate: float, seconds: float) -> bool:
    """Whether a sweep step's generator sent its nominal rate: nothing held back for a full
    socket buffer, and all but the messages due in its last tick (it stops mid-tick: at 20 000
    msg/s for 9 s it sent 179 982 of 180 000, so the step's achieved rate reads 19 997)."""
    return not res.get("stalled_sends") and res.get("sent", 0) >= 0.999 * rate * seconds


# the loadgen runs of one side, each with its own errors
RUNS = ("idle", "idle_sm", "idle_sm_burst", "logins_PLAIN", "logins_SCRAM-SHA-1", "messages")


def table(results: dict) -> str:
    for res in results["sides"].values():
        if "error" in res:
            continue
        res["errors"] = sum(int(_get(res, (k, "errors")) or 0) for k in RUNS)
    sides = list(results["sides"])
    header = ["figure", *sides]
    both = "vines" in sides and "prosody" in sides
    if both:
        header.append("ratio vines/prosody")
    rows = [header]
    for label, path, higher in ROWS:
        values = [_get(results["sides"][s], path) for s in sides]
        row = [label, *(_fmt(v) for v in values)]
        if both:
            row.append(
                ratio_cell(
                    _get(results["sides"]["vines"], path),
                    _get(results["sides"]["prosody"], path),
                    higher,
                )
            )
        rows.append(row)
    lines = align(rows)
    notes = [
        f"{s}: {results['sides'][s]['error']}" for s in sides if "error" in results["sides"][s]
    ]
    notes += [
        f"{s}: every sweep rate passed; the maximum is above the highest rate tried"
        for s in sides
        if results["sides"][s].get("max_rate_capped")
    ]
    notes += [
        f"{s} {k}: {_get(results['sides'][s], (k, 'error'))}"
        for s in sides
        for k in RUNS
        if _get(results["sides"][s], (k, "error"))
    ]
    pinned = ", ".join(s for s in sides if results["sides"][s].get("pinned"))
    if pinned:
        notes.append(f"message runs ({pinned}): the server on one core, the generator on the rest")
    return "\n".join([results["machine"], "", *lines, *notes])


# ---- issue 14's targets ---------------------------------------------------------------------


def run_tools(ns: argparse.Namespace, tmp: Path) -> dict:
    """The console's two targets, each measured by its own bench script (JSON out)."""
    out: dict = {}
    scripts = [
        ("cli_startup", ROOT / "bench" / "cli_startup.py", []),
        (
            "user_add",
            ROOT / "bench" / "user_add.py",
            [] if ns.only != "vines" else ["--no-prosody"],
        ),
    ]
    for name, script, extra in scripts:
        if not script.exists():  # not on this branch yet
            continue
        say(f"console: {script.name}")
        target = tmp / f"{name}.json"
        done = subprocess.run(
            [sys.executable, str(script), "--json", str(target), *extra],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode == 0 and target.exists():
            out[name] = json.loads(target.read_text())
        else:
            out[name] = {"error": f"exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    return out


def _user_add_ms(data: dict, key: str, label: str) -> float | None:
    """A median from bench/user_add.py's JSON (flat keys, or the older per-command form)."""
    value = data.get(key)
    return value if value is not None else _get(data, (label, "median_ms"))


def target_rows(results: dict, ns: argparse.Namespace) -> list[tuple]:
    """(target, ours, prosody's or None, ratio or None, goal text, met) for each target."""
    vines = results["sides"].get("vines", {})
    prosody = results["sides"].get("prosody", {})
    tools = results.get("tools", {})
    mib = 1 / 1024
    rows: list[tuple] = []

    def row(label, ours, theirs, goal, met, ratio=None):
        if ratio is None and isinstance(ours, int | float) and isinstance(theirs, int | float):
            ratio = ours / theirs if theirs else None
        rows.append((label, ours, theirs, ratio, goal, None if ours is None else met(ours, ratio)))

    max_rate = vines.get("max_rate")
    capped = " (every rate passed)" if vines.get("max_rate_capped") else ""
    row(
        f"max msg/s, p99 < 250 ms, 0 lost{capped}",
        max_rate,
        prosody.get("max_rate"),
        ">= 20 000",
        lambda v, r: v >= 20_000,
    )
    row(
        f"msg latency p95 ms at {ns.rate:g} msg/s",
        _get(vines, ("messages", "latency", "p95_ms")),
        _get(prosody, ("messages", "latency", "p95_ms")),
        "<= 1 ms (at 2000 msg/s)",
        lambda v, r: v <= 1.0 and ns.rate >= 2000,
    )
    for key, label in (("idle", ""), ("idle_sm", ", SM on")):
        row(
            f"KiB per idle session ({ns.sessions:,} sessions{label})",
            _get(vines, (key, "kib_per_session")),
            _get(prosody, (key, "kib_per_session")),
            "<= 32 (at 10 000 sessions)",
            lambda v, r: v <= 32 and ns.sessions >= 10_000,
        )
    fresh = [_get(side, ("idle", "rss_before_kib")) for side in (vines, prosody)]
    row(
        "fresh server RSS MB (after warm-up)",
        *(None if v is None else v * mib for v in fresh),
        "<= 30 MB",
        lambda v, r: v <= 30,
    )
    row(
        "logins/s, PLAIN (PBKDF2, one node)",
        _get(vines, ("logins_PLAIN", "logins_per_s")),
        _get(prosody, ("logins_PLAIN", "logins_per_s")),
        ">= 2x Prosody",
        lambda v, r: None if r is None else r >= 2,  # needs Prosody's figure
    )
    cli = tools.get("cli_startup", {})
    rows.append(
        (
            "vinesctl --help / import click",
            cli.get("vinesctl_help_ms"),
            cli.get("import_click_ms"),
            cli.get("ratio"),
            "<= 1.5x",
            None if cli.get("ratio") is None else cli["ratio"] <= 1.5,
        )
    )
    add = tools.get("user_add", {})
    ours = _user_add_ms(add, "vines_median_ms", "vinesctl -> bundled")
    theirs = _user_add_ms(add, "prosody_median_ms", "prosodyctl register")
    row("vinesctl user add median ms", ours, theirs, "<= 150 ms", lambda v, r: v <= 150)
    return rows


def targets_table(results: dict, ns: argparse.Namespace) -> str:
    header = ["target (issue 14)", "vines", "prosody", "ratio", "target", "met"]
    lines = [header]
    for label, ours, theirs, ratio, goal, met in target_rows(results, ns):
        lines.append([
            label,
            "not measured" if ours is None else _fmt(ours),
            _fmt(theirs),
            "-" if ratio is None else f"{ratio:.2f}",
            goal,
            "-" if met is None else ("met" if met else "NOT met"),
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    text = [
        "  ".join(
            c.ljust(w) if i in (0, 4, 5) else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in text)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    busy = " (other work is running: figures are noisy)" if load > 0.5 else ""
    return (
        f"machine: {platform.machine()} {os.cpu_count()} CPUs ({cpu}); Python "
        f"{platform.python_version()}, {ssl.OPENSSL_VERSION}, {pyexpat.EXPAT_VERSION}; "
        f"load generator on the same machine; load average at start {load:.2f}{busy}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["vines", "prosody"], help="run one side only")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--sessions", type=int, default=10_000, help="idle sessions")
    p.add_argument(
        "--settle",
        type=float,
        default=16.0,
        help="idle: seconds before reading RSS (past our server's 10 s [deadlines] hibernate"
        " and the heap trim after it)",
    )
    p.add_argument("--no-sm-idle", action="store_true", help="skip the idle run with SM on")
    p.add_argument(
        "--no-burst-idle",
        action="store_true",
        help="skip our SM idle run with every client's SM and presence in one burst after the "
        "last login (loadgen --burst: what heap fragmentation adds)",
    )
    p.add_argument(
        "--no-console",
        action="store_true",
        help="skip the console's targets (cli_startup, user_add)",
    )
    p.add_argument("--logins", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--rate", type=float, default=2000.0, help="messages: total msg/s")
    p.add_argument("--duration", type=float, default=10.0, help="messages: measured seconds")
    p.add_argument(
        "--sweep",
        type=lambda v: [float(x) for x in v.split(",")],
        default=DEFAULT_SWEEP,
        help="messages at increasing rates: the highest with p99 < 250 ms and nothing lost"
        f" (default {','.join(f'{r:g}' for r in DEFAULT_SWEEP)})",
    )
    p.add_argument("--no-sweep", action="store_true", help="skip the sweep (faster)")
    p.add_argument("--sweep-duration", type=float, default=6.0, help="seconds per sweep step")
    p.add_argument(
        "--sweep-procs", type=int, default=4, help="load generator processes for the sweep"
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="messages: leave the server and the generator to the scheduler (by default the "
        "server has one core, the generator the others)",
    )
    p.add_argument("--warmup", type=float, default=3.0, help="messages: unmeasured seconds first")
    p.add_argument("--procs", type=int, default=2, help="load generator processes")
    p.add_argument("--iterations", type=int, default=10_000, help="PBKDF2 iterations, both sides")
    p.add_argument("--prosody-iterations", type=int, help="Prosody's only (default --iterations)")
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ns = p.parse_args(argv)
    if ns.no_sweep:
        ns.sweep = None

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = ns.sessions * 2 + 1024
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))
    password = secrets.token_urlsafe(16)
    tmp = Path(tempfile.mkdtemp(prefix="vines-bench-"))
    results: dict = {"machine": machine(), "sides": {}, "settings": vars(ns)}
    order = [s for s in ("prosody", "vines") if ns.only in (None, s)]
    try:
        for name in order:
            accounts = max(ns.users, ns.sessions)  # one account per idle session
            say(f"{name}: provisioning {accounts} users")
            if name == "prosody":
                side: Side = ProsodySide(
                    tmp, accounts, password, ns.prosody_iterations or ns.iterations
                )
            else:
                side = VinesSide(tmp, accounts, password, ns.iterations)
            run_guarded(results, name, lambda side=side: run_side(side, ns, password))
        if not ns.no_console:
            results["tools"] = run_tools(ns, tmp)
    finally:
        if ns.keep:
            say(f"files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(results, f"{table(results)}\n\n{targets_table(results, ns)}", ns.json)
    return 0


def run_guarded(results: dict, name: str, work: Callable[[], dict]) -> None:
    """results["sides"][name] = work(), or the error that stopped it: the other sides go on."""
    try:
        results["sides"][name] = work()
    except Exception as exc:
        results["sides"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        say(f"{name}: failed: {exc}")


def report(results: dict, text: str, json_file: str | None) -> None:
    print(text)
    if json_file:
        Path(json_file).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
