"""RFC 2782 order of SRV records (sans-I/O): how a client tries the targets of a service.

Shared by the server's outbound s2s resolution (`net/resolve.py`) and the console's DNS probe,
so both try targets in the same order. Priority ascending; within one priority a weighted
random choice, repeated on what is left (weight-0 records first in the running sum, so they are
chosen only rarely, as RFC 2782 asks). The random source is a parameter: tests seed it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["SrvLike", "rfc2782_order"]


class SrvLike(Protocol):
    @property
    def priority(self) -> int: ...

    @property
    def weight(self) -> int: ...


R = TypeVar("R", bound=SrvLike)


def rfc2782_order(records: Sequence[R], rng: random.Random | None = None) -> list[R]:
    """The records in the order to try them (priority ascending, weighted random within one)."""
    rng = rng or random.Random()
    ordered: list[R] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        group.sort(key=lambda r: r.weight != 0)  # weight 0 first, as RFC 2782 says
        while group:
            total = sum(r.weight for r in group)
            pick = rng.randint(0, total) if total else 0
            running = 0
            for i, r in enumerate(group):
                running += r.weight
                if running >= pick:
                    ordered.append(group.pop(i))
                    break
    return ordered
