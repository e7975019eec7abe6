"""The log reader behind `vinesctl server logs`: records keep their traceback lines, the level
filter works on records, and following survives logrotate (a new file under the name, the way
the README's snippet rotates)."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from vinesctl.logfile import follow, tail

LINES = [
    "2026-01-01 10:00:00,001 INFO vines_server: serving localhost",
    "2026-01-01 10:00:01,002 ERROR vines_server.net.connection: boom",
    "Traceback (most recent call last):",
    '  File "x.py", line 1, in <module>',
    "ValueError: nope",
    "2026-01-01 10:00:02,003 WARNING vines_server: banned 192.0.2.7",
    "2026-01-01 10:00:03,004 DEBUG vines_server.storage: slow",
]


def test_tail_groups_tracebacks_and_filters_by_level(tmp_path):
    log = tmp_path / "vines.log"
    log.write_text("\n".join(LINES) + "\n")
    errors = tail(log, None, "error")
    assert [r.text for r in errors] == ["\n".join(LINES[1:5])]
    assert errors[0].to_json()["logger"] == "vines_server.net.connection"
    assert errors[0].to_json()["time"] == "2026-01-01T10:00:01,002"
    assert [r.level for r in tail(log, None, "warning")] == ["error", "warning"]
    assert [r.level for r in tail(log, 2, None)] == ["warning", "debug"]
    assert tail(log, 0, None) == []


def _follower(log: Path) -> queue.Queue:
    found: queue.Queue = queue.Queue()
    start = log.stat().st_size

    def run() -> None:
        for record in follow(log, None, start=start):
            found.put(record.text)

    threading.Thread(target=run, daemon=True).start()
    return found


def test_follow_across_logrotate(tmp_path):
    log = tmp_path / "vines.log"
    log.write_text(LINES[0] + "\n")
    found = _follower(log)
    with open(log, "a") as f:
        f.write(LINES[5] + "\n")
    assert found.get(timeout=10) == LINES[5]
    # logrotate create: the old file moves away, a new one takes the name
    log.rename(tmp_path / "vines.log.1")
    log.write_text(LINES[6] + "\n")
    assert found.get(timeout=10) == LINES[6]
    # a record with its traceback (logging writes it at once) comes out as one record
    with open(log, "a") as f:
        f.write("\n".join(LINES[1:5]) + "\n")
    assert found.get(timeout=10) == "\n".join(LINES[1:5])
