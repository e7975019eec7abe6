"""The result type every probe returns: a list of findings, each with a status and the fix.

A `Finding` says what was checked (`name`), how it went (`status`), what was seen (`detail`) and
what to do about it (`fix`, empty when there is nothing to do). `Report` groups the findings of one
command with the raw data the probes gathered, and decides the exit code:

- 0 when every finding is ok, warn or skip;
- 1 when any finding fails, or, with `strict`, when any finding warns.

`skip` marks a check that could not run (the reason is in `detail`); it never changes the exit code.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.SKIP: 0, Status.OK: 1, Status.WARN: 2, Status.FAIL: 3}


@dataclass
class Finding:
    """One checked fact: `check` groups findings (dns, tls, connectivity, features)."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    check: str = ""
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        """As `--json` shows it: a fix, group or target that is not there is null."""
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix or None,
            "check": self.check or None,
            "target": self.target or None,
        }

    @classmethod
    def ok(cls, name: str, detail: str, **kw: Any) -> Finding:
        return cls(name, Status.OK, detail, **kw)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str = "", **kw: Any) -> Finding:
        return cls(name, Status.WARN, detail, fix, **kw)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str = "", **kw: Any) -> Finding:
        return cls(name, Status.FAIL, detail, fix, **kw)

    @classmethod
    def skip(cls, name: str, detail: str, fix: str = "", **kw: Any) -> Finding:
        return cls(name, Status.SKIP, detail, fix, **kw)


def worst(findings: Iterable[Finding]) -> Status:
    """The most severe status among `findings` (ok when there are none)."""
    result = Status.OK
    for finding in findings:
        if finding.status.rank > result.rank:
            result = finding.status
    return result


def exit_code(findings: Iterable[Finding], strict: bool = False) -> int:
    status = worst(findings)
    if status is Status.FAIL or (strict and status is Status.WARN):
        return 1
    return 0


def summary(findings: Iterable[Finding]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for finding in findings:
        counts[finding.status.value] += 1
    return counts


@dataclass
class Report:
    """What a diagnostic command prints: the findings plus the data they were derived from."""

    command: str
    subject: str
    findings: list[Finding] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    status: Status = Status.OK
    counts: dict[str, int] = field(default_factory=dict)

    def finish(self) -> Report:
        self.status = worst(self.findings)
        self.counts = summary(self.findings)
        return self

    def exit_code(self, strict: bool = False) -> int:
        return exit_code(self.findings, strict)


# progress callback: probes call it with a short line ("STARTTLS xmpp.example.org:5222");
# commands wire it to a Rich status on stderr, or to nothing with --json
Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    return None
