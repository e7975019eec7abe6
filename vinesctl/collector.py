"""The cyclic garbage collector around a command's start-up and exit.

Importing modules and logging in allocate objects that live until the process ends: the
collector's automatic passes over them find nothing (~7 ms of `vinesctl user add`), and so do
the interpreter's final collections at exit (~9 ms). A pause ends before a command's own work
runs, which may last (watches, the dashboard); what a module import allocated is frozen after
it (otherwise the first pass after the pause walks it all at once, and again as it ages).
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
def loading() -> Iterator[None]:
    """Around imports: no collection inside, and what they allocated frozen after (a module's
    objects live until exit; its few cycles of garbage stay with them). Only before any session
    ran in the process (the CLI's own import): a freeze would also keep an earlier session's
    garbage, to be collected later outside its event loop."""
    resume = pause()
    try:
        yield
    finally:
        gc.freeze()
        resume()


def freeze_at_exit() -> None:
    """At exit, freeze what is left before the interpreter's own collections (atexit runs
    before them). Only after the command's garbage is collected: what remains is live data the
    exit frees anyway."""
    atexit.unregister(gc.freeze)  # once per process, however many sessions it ran
    atexit.register(gc.freeze)
