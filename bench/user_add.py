#!/usr/bin/env python3
"""Wall time of `vinesctl user add` from a shell, next to `prosodyctl register`; prints ratios.

    python bench/user_add.py                 # 15 timed runs each, after 2 warm-up runs
    python bench/user_add.py --runs 30 --json out.json

What is timed, each run a fresh process started by `sh -c` (as an administrator types it):

  vinesctl -> bundled   `vinesctl user add benchN` against our server (started with
                        `vinesctl server init` + `vinesctl server start`, its own process):
                        interpreter start, imports, connect, STARTTLS, SCRAM login, XEP-0133
                        add-user (execute, form, complete), disconnect.
  vinesctl -> prosody   the same command against Prosody's mod_admin_adhoc (for reference: the
                        console's cost against another server).
  prosodyctl register   `prosodyctl --config F register benchN prosody.test PASSWORD` (writes the
                        account file directly, no network; the password is in argv here only
                        because this is the baseline named in the issue and a throwaway one).

Both servers hash new passwords with 10 000 PBKDF2 iterations (Prosody's default and ours). Uses
hyperfine when it is installed (`--hyperfine`), else repeated subprocess timing. The runs may
write bytecode (PYTHONDONTWRITEBYTECODE is dropped), as an installed package has it.

`--json FILE` writes `{"vines_median_ms", "prosody_median_ms", "vinesctl_to_prosody_median_ms",
"vines_cpu_median_ms", "target_ms", "commands": {label: figures}}`: `prosody_median_ms` is
`prosodyctl register`; the Prosody figures only when Prosody ran (bench/compare.py reads the
first two keys).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 150  # issue 14: `vinesctl user add` against the bundled server, median
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.support.prosody


def _console_script() -> str:
    """The installed `vinesctl` script next to this interpreter (not a pyenv shim, whose bash
    wrapper would add its own start-up to every run), else `python -m vinesctl.cli`."""
    import sysconfig

    script = Path(sysconfig.get_path("scripts")) / "vinesctl"
    if script.is_file():
        return f"'{script}'"
    return f"'{sys.executable}' -c 'from vinesctl.cli import main; main()'"


RUN_VINESCTL = _console_script()


def sh(command: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {command}\n{done.stdout}{done.stderr}")
    return done


def time_runs(
    template: str, env: dict[str, str], runs: int, warmup: int, tag: str
) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system of sh and what it ran) of
    `template.format(n=...)` run through sh, a new user name each time. CPU time barely moves
    when other work shares the machine; wall time does."""
    for i in range(warmup):
        sh(template.format(n=f"{tag}warm{i}"), env)
    times, cpus = [], []
    for i in range(runs):
        command = template.format(n=f"{tag}{i}")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        sh(command, env)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return times, cpus


def time_hyperfine(
    template: str, env: dict[str, str], runs: int, warmup: int, tag: str, work: Path
) -> list[float]:
    """The same with hyperfine: a counter file gives each run its own user name."""
    counter = work / f"{tag}.counter"
    counter.write_text("0")
    command = f"n=$(cat '{counter}'); echo $((n+1)) > '{counter}'; " + template.format(
        n=f"{tag}h$n"
    )
    out = work / f"{tag}.hyperfine.json"
    subprocess.run(
        ["hyperfine", "--shell", "sh", "--runs", str(runs), "--warmup", str(warmup),
         "--export-json", str(out), "--style", "none", command],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return list(json.loads(out.read_text())["results"][0]["times"])


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "runs": len(times),
        "median_ms": statistics.median(times) * 1000,
        "mean_ms": statistics.fmean(times) * 1000,
        "min_ms": ordered[0] * 1000,
        "p90_ms": ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000,
        "stdev_ms": (statistics.stdev(times) * 1000) if len(times) > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--hyperfine", action="store_true", help="time with hyperfine")
    parser.add_argument("--no-prosody", action="store_true", help="only our server")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", metavar="FILE", help="write every raw figure here")
    args = parser.parse_args()
    if args.hyperfine and shutil.which("hyperfine") is None:
        raise SystemExit("hyperfine is not installed; drop --hyperfine")

    work = Path(tempfile.mkdtemp(prefix="bench-user-add-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VINESCTL_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env |= {
        "XDG_CONFIG_HOME": str(work / "config"),
        "XDG_DATA_HOME": str(work / "data"),
        "VINESCTL_NEW_PASSWORD": "bench user pass phrase",
    }
    results: dict[str, dict] = {}
    prosody = None
    timer = time_hyperfine if args.hyperfine else None

    def measure(label: str, template: str, run_env: dict[str, str], tag: str) -> None:
        cpu: dict[str, float] = {}
        if timer is not None:
            times = timer(template, run_env, args.runs, args.warmup, tag, work)
        else:
            times, cpus = time_runs(template, run_env, args.runs, args.warmup, tag)
            cpu = {"cpu_median_ms": statistics.median(cpus) * 1000}
        results[label] = summary(times) | cpu | {"times_s": times}

    try:
        # our server, in its own process, as an administrator sets it up
        vines_dir = work / "vines"
        sh(f"{RUN_VINESCTL} server init --domain bench.test --dir '{vines_dir}' "
           "--port 0 --direct-tls-port 0 --profile-name vines", env)  # fmt: skip
        sh(f"{RUN_VINESCTL} server start --config '{vines_dir / 'vines.toml'}'", env)
        measure("vinesctl -> bundled", f"{RUN_VINESCTL} --profile vines user add {{n}}", env, "v")

        if not args.no_prosody:
            from tests.support.prosody import PROSODYCTL, ProsodyInstance, prosody_available

            reason = prosody_available()
            if reason:
                raise SystemExit(reason + " (or pass --no-prosody)")
            prosody = ProsodyInstance(work, domain="prosody.test", log_level="warn")
            prosody.start()
            admin_pw = secrets.token_urlsafe(12)
            prosody.register("admin", admin_pw)
            sh(f"{RUN_VINESCTL} profile add prosody --jid admin@prosody.test "
               f"--server {prosody.host}:{prosody.port} --ca '{prosody.ca_file}'", env)  # fmt: skip
            measure(
                "vinesctl -> prosody",
                f"{RUN_VINESCTL} --profile prosody user add {{n}}",
                env | {"VINESCTL_PASSWORD": admin_pw},
                "p",
            )
            measure(
                "prosodyctl register",
                f"'{PROSODYCTL}' --config '{prosody.config_file}' register {{n}} prosody.test "
                "'bench user pass phrase'",
                env,
                "r",
            )
    finally:
        with_server = vines_dir / "vines.toml"
        if with_server.exists():
            sh(f"{RUN_VINESCTL} server stop --config '{with_server}'", env, check=False)
        if prosody is not None:
            prosody.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"# vinesctl user add, wall time from sh ({platform.node()}, {os.cpu_count()} cpus, "
          f"{'hyperfine' if args.hyperfine else 'subprocess timing'}, "
          f"{args.runs} runs after {args.warmup} warm-up)")  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.2f} (wall time suffers from other work)")
    print(f"{'command':<22} {'median':>9} {'mean':>9} {'min':>9} {'p90':>9} {'CPU median':>11}")
    for label, r in results.items():
        cpu = f"{r['cpu_median_ms']:>9.1f}ms" if "cpu_median_ms" in r else f"{'-':>11}"
        print(
            f"{label:<22} {r['median_ms']:>7.1f}ms {r['mean_ms']:>7.1f}ms "
            f"{r['min_ms']:>7.1f}ms {r['p90_ms']:>7.1f}ms {cpu}"
        )
    base = results.get("prosodyctl register")
    if base:
        for label in ("vinesctl -> bundled", "vinesctl -> prosody"):
            if label in results:
                ratio = results[label]["median_ms"] / base["median_ms"]
                print(f"ratio {label} / prosodyctl register (median): {ratio:.2f}")
    ours = results["vinesctl -> bundled"]["median_ms"]
    verdict = "met" if ours <= TARGET_MS else "NOT met"
    print(f"target: median <= {TARGET_MS} ms -> {verdict} ({ours:.0f} ms)")
    if args.json:
        figures: dict[str, object] = {"vines_median_ms": ours, "target_ms": TARGET_MS}
        if "cpu_median_ms" in results["vinesctl -> bundled"]:
            figures["vines_cpu_median_ms"] = results["vinesctl -> bundled"]["cpu_median_ms"]
        if base:
            figures["prosody_median_ms"] = base["median_ms"]
        if "vinesctl -> prosody" in results:
            figures["vinesctl_to_prosody_median_ms"] = results["vinesctl -> prosody"]["median_ms"]
        Path(args.json).write_text(json.dumps(figures | {"commands": results}, indent=2))


if __name__ == "__main__":
    main()
