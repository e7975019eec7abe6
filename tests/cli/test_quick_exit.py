"""After a remote command, the console's process ends without the interpreter's teardown: the
output and the exit code are the same, the atexit handlers run, and whatever could still need the
teardown (another thread, --debug, no session) takes the normal exit."""

from __future__ import annotations

from tests.cli.test_light_sessions import run_script as run
from tests.cli.test_server_cli import accounts

# an object that only the interpreter's teardown lets go of (when it empties sys.modules)
TEARDOWN_PROBE = """
import os, sys, types

class Finalized:
    def __del__(self):
        os.write(1, b"teardown\\n")

probe = types.ModuleType("teardown_probe")
probe.keep = Finalized()
sys.modules[probe.__name__] = probe
del probe
"""

PROCESS = (
    TEARDOWN_PROBE
    + """
import atexit
atexit.register(lambda: print("atexit ran", flush=True))
from vinesctl.cli import main
sys.argv = ["vinesctl", *sys.argv[1:]]
main()
"""
)

OTHER_THREAD = (
    TEARDOWN_PROBE
    + """
import threading
from vinesctl import quick_exit

quick_exit.exit_now(0)
print("no session: normal exit", flush=True)
quick_exit.session_ended()
go = threading.Event()
worker = threading.Thread(target=lambda: (go.wait(), print("thread finished", flush=True)))
worker.start()
quick_exit.exit_now(3)
print("thread alive: normal exit", flush=True)
go.set()
sys.exit(3)
"""
)


def test_a_remote_command_ends_without_teardown(running_bundled, cli_env):
    done = run(cli_env, PROCESS, "user", "add", "quick")
    assert done.returncode == 0, done.stderr
    created, *rest = done.stdout.splitlines()
    assert created.startswith("created quick@")
    assert rest == ["atexit ran"]  # and no "teardown"
    assert any(jid.startswith("quick@") for jid in accounts(running_bundled))


def test_a_failed_remote_command_keeps_its_line_and_exit_code(running_bundled, cli_env):
    assert run(cli_env, PROCESS, "user", "add", "twice").returncode == 0
    done = run(cli_env, PROCESS, "user", "add", "twice")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "already exists" in done.stderr
    assert done.stdout.splitlines() == ["atexit ran"]


def test_debug_keeps_the_normal_exit(running_bundled, cli_env):
    done = run(cli_env, PROCESS, "--debug", "user", "add", "traced")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["atexit ran", "teardown"]


def test_no_session_or_another_thread_keeps_the_normal_exit(cli_env):
    done = run(cli_env, OTHER_THREAD)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == [
        "no session: normal exit",
        "thread alive: normal exit",
        "thread finished",
        "teardown",
    ]
