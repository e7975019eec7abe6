"""What a fault inside the server answers to the stanza that caused it.

A handler that raises, or a store that fails, must not end the sender's stream (the connection
closes with `internal-server-error` only for what escapes everything). The router turns the
exception into a stanza error: a full disk is `resource-constraint` of type wait (the sender may
retry once space is freed), anything else `internal-server-error`.
"""

from __future__ import annotations

import errno
import sqlite3

from vines_server.xmpp.errors import StanzaError


def disk_full(exc: BaseException) -> bool:
    """`exc`, or what it was raised from, says the disk (or the store's page limit) is full.
    The storage layer wraps its driver's errors, so the chain of causes is walked."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error) and getattr(seen, "sqlite_errorcode", None) == (
            sqlite3.SQLITE_FULL
        ):
            return True
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def fault_error(exc: BaseException) -> StanzaError:
    if disk_full(exc):
        return StanzaError("resource-constraint", "the server's storage is full", type="wait")
    return StanzaError("internal-server-error")


def describe(exc: BaseException) -> str:
    """One line naming the cause, for the log (the innermost cause says most)."""
    inner = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = f"{type(exc).__name__}: {exc}"
    if inner is not exc:
        text += f" (from {type(inner).__name__}: {inner})"
    return text
