"""The fuzz targets' shared shape: a target is a strategy and a check, run by the tests with a
fixed, derandomized budget (CI: a few seconds each) and by `bench/fuzz.py` with a large budget
and random seeds. A check raises AssertionError (or anything else) when the property fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]
    examples: int = 100  # the CI budget


def ci_test(target: Target) -> Callable[[], None]:
    """A pytest test running `target` for its fixed budget, the same cases on every run."""
    test = settings(
        max_examples=target.examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(target.strategy)(target.check))
    test.__name__ = f"test_{target.name.replace('-', '_')}"
    return test
