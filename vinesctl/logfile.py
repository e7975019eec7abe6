"""Reading the bundled server's log file: the last N records, a level filter, and following the
file across logrotate's moves (a new file under the same name, or the same file truncated).

A record is a line `DATE TIME LEVEL LOGGER: MESSAGE` (vines_server.main.LOG_FORMAT) and the
lines after it that do not start like one (a traceback), so filtering never splits a traceback
from its record.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("debug", "info", "warning", "error", "critical")
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+ (?P<level>[A-Z]+) (?P<logger>\S+): ")
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class LogRecord:
    text: str  # the record's lines, joined by newlines, without the final newline
    level: str | None  # lower case; None for lines before the first record

    def to_json(self) -> dict:
        match = _RECORD.match(self.text)
        return {
            "time": self.text[:23].replace(" ", "T", 1) if match else None,
            "level": self.level,
            "logger": match["logger"] if match else None,
            "text": self.text,
        }


def at_least(level: str | None, minimum: str | None) -> bool:
    if minimum is None:
        return True
    rank = {name: i for i, name in enumerate(LEVELS)}
    return level is not None and rank.get(level, 0) >= rank[minimum]


def records(lines: Iterator[str]) -> Iterator[LogRecord]:
    """Group lines (without newlines) into records."""
    current: list[str] = []
    level: str | None = None
    for line in lines:
        match = _RECORD.match(line)
        if match and current:
            yield LogRecord("\n".join(current), level)
            current = []
        if match:
            level = match["level"].lower()
        current.append(line)
    if current:
        yield LogRecord("\n".join(current), level)


def tail(path: Path, count: int | None, minimum: str | None) -> list[LogRecord]:
    """The last `count` records at `minimum` level or above (all of them when count is None)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        kept = deque(
            (r for r in records(line.rstrip("\n") for line in f) if at_least(r.level, minimum)),
            maxlen=count,
        )
    return list(kept)


def follow(path: Path, minimum: str | None, start: int | None = None) -> Iterator[LogRecord]:
    """Records appended to `path` from offset `start` (default: its end), forever. A file
    replaced under the same name (logrotate's create) is read from its start once the old one
    has been read to its end; a truncated one (copytruncate) from its start too."""
    f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 (reopened on rotation)
    try:
        f.seek(start if start is not None else 0, os.SEEK_SET if start is not None else os.SEEK_END)
        pending = ""
        lines: list[str] = []
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split("\n")
                lines.extend(complete)
                # a record ends where the next one starts: keep the last one open while it grows
                if lines:
                    done = list(records(iter(lines)))
                    for record in done[:-1]:
                        if at_least(record.level, minimum):
                            yield record
                    lines = done[-1].text.split("\n")
                continue
            if _rotated(f, path):
                f.close()
                f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
                continue
            if lines and not pending:  # quiet: the last record is complete
                record = next(records(iter(lines)))
                if at_least(record.level, minimum):
                    yield record
                lines = []
            time.sleep(POLL_SECONDS)
    finally:
        f.close()


def _rotated(f, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False  # moved away and not yet recreated: keep reading the old one
    mine = os.fstat(f.fileno())
    if not os.path.samestat(now, mine):
        return True
    if now.st_size < f.tell():  # copytruncate
        f.seek(0)
    return False
