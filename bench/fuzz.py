"""The fuzz targets of tests/fuzz/ with a large budget and random seeds (security plan 5.9).

CI runs each target for a fixed, derandomized budget of a few seconds; this script runs the same
strategies and checks for as long as asked, each round with a fresh random seed, and prints per
target the cases run, the rounds that found a failure, and the first falsifying example of each.

    python bench/fuzz.py                    # every target, 60 s each
    python bench/fuzz.py --seconds 300 --only parser-chunking,jid-parse
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fuzz

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.fuzz import (  # noqa: E402
    test_forms_fuzz,
    test_jid_fuzz,
    test_parser_fuzz,
    test_scram_fuzz,
)
from tests.fuzz.budget import Target  # noqa: E402

TARGETS: list[Target] = [
    *test_parser_fuzz.TARGETS,
    *test_jid_fuzz.TARGETS,
    *test_scram_fuzz.TARGETS,
    *test_forms_fuzz.TARGETS,
]
ROUND = 500  # cases per round (one seed); a failing round stops early and is shrunk


def run_round(target: Target, case_seed: int, cases: list[int]) -> str | None:
    """One round of up to ROUND cases; returns the failure (shrunk example and error) or None."""

    def counted(case: object) -> None:
        cases[0] += 1
        target.check(case)

    test = seed(case_seed)(
        settings(
            max_examples=ROUND,
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )(given(target.strategy)(counted))
    )
    try:
        test()
    except Exception as exc:  # the property's own failure, whatever the check raised
        lines = traceback.format_exception_only(type(exc), exc)
        return "".join(lines).strip()[:2000]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    parser.add_argument("--only", help="comma-separated target names")
    args = parser.parse_args()
    chosen = [t for t in TARGETS if not args.only or t.name in args.only.split(",")]
    if not chosen:
        print(f"no such target; known: {', '.join(t.name for t in TARGETS)}", file=sys.stderr)
        return 2
    rng = random.SystemRandom()
    total_cases = total_failures = 0
    print(f"{'target':<22} {'cases':>9} {'rounds':>6} {'failures':>8} {'seconds':>8}", flush=True)
    for target in chosen:
        cases, rounds, failures = [0], 0, []
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            rounds += 1
            found = run_round(target, rng.getrandbits(64), cases)
            if found is not None:
                failures.append(found)
        elapsed = time.monotonic() - start
        print(
            f"{target.name:<22} {cases[0]:>9} {rounds:>6} {len(failures):>8} {elapsed:>8.1f}",
            flush=True,
        )
        for failure in failures[:3]:
            print("    " + failure.replace("\n", "\n    "))
        total_cases += cases[0]
        total_failures += len(failures)
    print(f"{'total':<22} {total_cases:>9} {'':>6} {total_failures:>8}")
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
