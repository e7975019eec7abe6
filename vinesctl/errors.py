"""The console's error family. Every failure a user can cause ends as one line naming the cause
and the fix, and an exit code: 1 for failures, 2 for usage errors. `cli.main` is the only place
that turns exceptions into output."""

from __future__ import annotations


class VinesctlError(Exception):
    """A failure with a human message (cause and fix in one line)."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.message}: {self.fix}" if self.fix else self.message


class UsageError(VinesctlError):
    """Bad arguments or missing input the user must supply."""

    exit_code = 2


class CheckFailed(VinesctlError):
    """A diagnostic found failures; the report was already printed."""
