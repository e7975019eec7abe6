"""A remote command loads what its session uses and no more: `vinesctl user add` against the
bundled server creates the account without importing Rich (stderr is not a terminal, so there
is no spinner), the modules slixmpp imports but a session does not use (pygments, aiodns when
the address is known, importlib.metadata), the server's config module, or other commands."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.test_server_cli import accounts

NOT_FOR_USER_ADD = (
    "rich",
    "pygments",
    "aiodns",
    "importlib.metadata",
    "vines_server.config",
    "vinesctl.commands.server",
    "slixmpp.plugins.xep_0030",
    "vinesctl.xmpp.admin_results",  # the reports' types: a change builds none
)

RUN_AND_LIST_MODULES = """
import json, sys
from vinesctl.cli import main
try:
    main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as out:
        json.dump(sorted(sys.modules), out)
"""


def run_script(cli_env: dict, script: str, *args: str) -> subprocess.CompletedProcess:
    """`script` in a fresh interpreter (what an administrator's shell starts), with `args`."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=cli_env | {"VINESCTL_NEW_PASSWORD": "a new pass phrase"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_add_loads_only_what_its_session_uses(running_bundled, cli_env, tmp_path):
    listing = tmp_path / "modules.json"
    done = run_script(cli_env, RUN_AND_LIST_MODULES, str(listing), "user", "add", "light")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created light@")
    assert any(jid.startswith("light@") for jid in accounts(running_bundled))
    loaded = json.loads(listing.read_text())
    assert "slixmpp" in loaded
    unwanted = [m for m in loaded if m.startswith(NOT_FOR_USER_ADD)]
    assert unwanted == []


SLIXMPP_BOTH_WAYS = """
import json, sys
from vinesctl.xmpp.session import _import_slixmpp

slixmpp = _import_slixmpp(with_address=True)
skipped = [m for m in ("pygments", "aiodns", "importlib.metadata") if m in sys.modules]
from slixmpp.xmlstream import resolver
dns_with_address = resolver.AIODNS_AVAILABLE
_import_slixmpp(with_address=False)  # a later session that resolves the domain
import aiodns, importlib.metadata, pygments  # nothing stays hidden
print(json.dumps({
    "skipped": skipped,
    "dns_with_address": dns_with_address,
    "dns_after": resolver.AIODNS_AVAILABLE and resolver.aiodns is aiodns,
    "version": slixmpp.__version__,
    "module_version": slixmpp.version.__version__,
    "version_info": list(slixmpp.__version_info__),
    "installed": importlib.metadata.version("slixmpp"),
}))
"""


def test_slixmpp_imported_light_keeps_its_version_and_dns():
    done = subprocess.run(
        [sys.executable, "-c", SLIXMPP_BOTH_WAYS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["skipped"] == []
    assert seen["dns_with_address"] is False
    assert seen["dns_after"] is True
    assert seen["version"] == seen["module_version"] == seen["installed"]
    assert seen["version_info"] == [int(p) for p in seen["installed"].split(".")[:3]]


# registered first, so it runs after every exit handler the command registers (last in, first
# out): what it sees is what the interpreter's final collections will meet
RUN_AND_REPORT_FREEZE_AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
from vinesctl.cli import main
main(sys.argv[1:])
"""


def test_a_session_command_leaves_nothing_for_the_exit_collections(running_bundled, cli_env):
    """After the session's own collection, what is left at exit is live data: frozen, the
    interpreter's final collections skip it instead of walking every object once more."""
    done = run_script(cli_env, RUN_AND_REPORT_FREEZE_AT_EXIT, "user", "add", "frozen")
    assert done.returncode == 0, done.stderr
    created, frozen = done.stdout.splitlines()
    assert created.startswith("created frozen@")
    assert frozen == "frozen at exit: True"
    assert any(jid.startswith("frozen@") for jid in accounts(running_bundled))
