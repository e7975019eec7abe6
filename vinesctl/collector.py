"""The cyclic garbage collector around a command's start-up and exit.

Importing modules and logging in allocate objects that live until the process ends: the
collector's automatic passes over them find nothing (~7 ms of `vinesctl user add`), and so do
the interpreter's final collections at exit (~9 ms). A pause ends before a command's own work
runs, which may last (watches, the dashboard).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Callable, Iterator


def pause() -> Callable[[], None]:
    """Stops automatic collection; returns the function that resumes it (callable twice, and a
    collector already disabled by someone else stays disabled)."""
    if not gc.isenabled():
        return lambda: None
    gc.disable()
    return gc.enable


@contextlib.contextmanager
def paused() -> Iterator[None]:
    resume = pause()
    try:
        yield
    finally:
        resume()


def freeze_at_exit() -> None:
    """At exit, freeze what is left before the interpreter's own collections (atexit runs
    before them). Only after the command's garbage is collected: what remains is live data the
    exit frees anyway."""
    atexit.unregister(gc.freeze)  # once per process, however many sessions it ran
    atexit.register(gc.freeze)
