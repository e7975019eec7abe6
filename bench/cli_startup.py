#!/usr/bin/env python3
"""Wall time of `vinesctl --help` next to `python -c "import click"` in one run; prints the ratio.

    python bench/cli_startup.py                  # 40 timed runs each, after 3 warm-up runs
    python bench/cli_startup.py --runs 100 --json out.json

Each run is a fresh process started directly (no shell): the installed `vinesctl` console script
next to this interpreter, and this interpreter with `-c "import click"`, so both pay the same
interpreter start and site set-up, with bytecode written by the warm-up runs as an installed
package has it. The two commands alternate run by run, so a burst of other work on a shared
machine lands on both. The figure is the median of each; `--json FILE` writes
`{"vinesctl_help_ms", "import_click_ms", "ratio", ...}` (the keys bench/compare.py reads). No
hyperfine needed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

TARGET_RATIO = 1.5  # issue 14: `vinesctl --help` <= 1.5x `python -c "import click"`


def console_argv() -> list[str]:
    """The installed `vinesctl` script next to this interpreter (not a pyenv shim, whose bash
    wrapper would add its own start-up), else this interpreter running `vinesctl.cli.main`."""
    script = Path(sysconfig.get_path("scripts")) / "vinesctl"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from vinesctl.cli import main; main()"]


def wall_seconds(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True, timeout=60
    )
    return time.perf_counter() - start


def measure(commands: dict[str, list[str]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Wall seconds of each command, `runs` times, the commands interleaved run by run."""
    # bytecode may be written (and then read), as an installed package has it
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VINESCTL_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    for _ in range(warmup):
        for argv in commands.values():
            wall_seconds(argv, env)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, argv in commands.items():
            times[label].append(wall_seconds(argv, env))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    args = parser.parse_args()

    times = measure(
        {
            "vinesctl --help": [*console_argv(), "--help"],
            "import click": [sys.executable, "-c", "import click"],
        },
        args.runs,
        args.warmup,
    )
    help_ms = statistics.median(times["vinesctl --help"]) * 1000
    click_ms = statistics.median(times["import click"]) * 1000
    ratio = help_ms / click_ms
    load = os.getloadavg()[0]
    print(f"# CLI start-up, wall time ({platform.node()}, {os.cpu_count()} cpus, load {load:.2f}, "
          f"{args.runs} interleaved runs after {args.warmup} warm-up)")  # fmt: skip
    print(f"{'command':<28} {'median':>9} {'min':>9}")
    for label, values in times.items():
        print(
            f"{label:<28} {statistics.median(values) * 1000:>7.1f}ms {min(values) * 1000:>7.1f}ms"
        )
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"ratio vinesctl --help / import click (median): {ratio:.2f} "
          f"(target <= {TARGET_RATIO}: {verdict})")  # fmt: skip
    if args.json:
        result = {
            "vinesctl_help_ms": help_ms,
            "import_click_ms": click_ms,
            "ratio": ratio,
            "runs": args.runs,
            "times_s": times,
        }
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
