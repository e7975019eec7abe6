"""Ending the console's process without the interpreter's teardown, once a remote command is done.

At exit CPython clears every module's namespace and frees its objects one by one: ~10 M
instructions of a 530 M `vinesctl user add` (~2 %), to hand back memory the operating system
takes back at once. After a remote command nothing is left that needs it: the session is closed
and its garbage collected inside its event loop (commands/remote.py), and no other thread runs.
So `main()` flushes the output, runs the atexit handlers (log files, ...) and calls os._exit.
Whatever could still need the teardown takes the normal exit instead: no remote session ended,
another thread alive, output that cannot be flushed (a closed pipe reports as Python does), an
exit code that is not a number, or --debug (`main()` asks only without it: the warnings at
shutdown are part of a diagnosis).
"""

from __future__ import annotations

import atexit
import os
import sys

_session_ended = False


def session_ended() -> None:
    """A remote session ended and its garbage is collected: what is left is live until exit."""
    global _session_ended
    _session_ended = True


def exit_now(code: object) -> None:
    """os._exit(code) after flushing and the atexit handlers, when nothing needs the teardown;
    otherwise returns and the caller exits normally."""
    if not _session_ended:
        return
    if code is None:
        code = 0
    if not isinstance(code, int) or isinstance(code, bool):
        return  # sys.exit prints a message for those: leave it to the interpreter
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return  # the normal exit waits for it
    if not _flushed():
        return
    atexit._run_exitfuncs()  # once: they are unregistered as they run
    if _flushed():
        os._exit(code)


def _flushed() -> bool:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or file: the normal exit reports it
            return False
    return True
