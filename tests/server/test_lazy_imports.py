"""A fresh server with the default vines.toml (the one `vinesctl server init` writes) imports
none of the heavy libraries it does not use: they cost resident memory in every process
(issue 14: fresh RSS). Federation loads dnspython, pyOpenSSL and cryptography; [metrics] loads
prometheus_client; PRECIS and IDNA tables (and unicodedata) load at the first non-ASCII
address; the component stream code with the first component. Of the standard library, shutil
(with bz2 and lzma) is not needed: argparse imports it to size its help; platform only when a
client asks for the server's version; random (0.27 MB), which `secrets` imports, is replaced by
vines_server.xmpp.tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from vines_server.modules import lazy

pytestmark = pytest.mark.timeout(120)

LAZY = ("cryptography", "OpenSSL", "dns", "prometheus_client", "precis_i18n", "idna", "asyncpg")
# our own code that only some configurations run: a server without components (XEP-0114),
# cluster or federation, on SQLite, never loads it
LAZY_OURS = (
    "vines_server.xmpp.component",
    "vines_server.net.component",
    "vines_server.cluster.node",
    "vines_server.net.s2s",
    "vines_server.storage.memory",
    # ad-hoc commands only: declared at start, loaded at first use (vines_server.modules.lazy)
    *(f"vines_server.modules.{name}" for name in lazy.COMMANDS),
)
LAZY_STDLIB = ("shutil", "bz2", "lzma", "platform", "random", "secrets", "unicodedata")

# starts and stops the server in a process of its own, then lists what it imported (not what the
# environment's site hooks loaded before it), before and after one non-ASCII address is parsed
PROBE = """
import sys
# what the interpreter loaded before the server (site hooks, .pth files of this environment)
preloaded = {m.split(".")[0] for m in sys.modules}
import asyncio, json
from vines_server.config import load
from vines_server.main import main
from vines_server.server import Server

try:
    main(["--version"])  # builds the command line parser, as every start does
except SystemExit:
    pass

async def run():
    server = Server(load(sys.argv[1]))
    await server.start()
    await server.stop()

asyncio.run(run())
started = sorted({m.split(".")[0] for m in sys.modules} - preloaded)
ours = sorted(m for m in sys.modules if m.startswith("vines_server."))
from vines_server.xmpp.jid import JID, legacy_localpart
# what every login with an ASCII name prepares
JID.parse("Alice@Localhost/phone"), legacy_localpart("Alice")
ascii = sorted({m.split(".")[0] for m in sys.modules} - preloaded)
JID.parse("żółw@bücher.example/ü")
parsed = sorted({m.split(".")[0] for m in sys.modules} - preloaded)
print(json.dumps({"started": started, "ours": ours, "ascii": ascii, "parsed": parsed}))
"""


def loaded(config: Path) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
        cwd=config.parent,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_default_server_imports_no_heavy_library(default_config: Path) -> None:
    modules = loaded(default_config)
    assert [m for m in LAZY + LAZY_STDLIB if m in modules["started"]] == []
    assert [m for m in LAZY + LAZY_STDLIB if m in modules["ascii"]] == []
    assert [m for m in LAZY_OURS if m in modules["ours"]] == []
    # the lazy parts still load when needed
    assert {"precis_i18n", "idna", "unicodedata"} <= set(modules["parsed"])


def test_federation_loads_the_s2s_libraries(default_config: Path) -> None:
    """The other side of the coin: with [federation] on, the s2s code (and what it needs) is
    there from the start."""
    text = default_config.read_text()
    assert "\n[federation]\n" in text
    text = text.replace("\n[federation]\n", '\n[federation]\nallow = ["example.org"]\n', 1)
    default_config.write_text(text.replace("\nallow = []\n", "\n", 1))
    started = set(loaded(default_config)["started"])
    assert {"dns", "OpenSSL", "cryptography"} <= started


async def test_the_version_still_names_the_system(tmp_path: Path, pki) -> None:
    """platform is imported at the first version request, which still answers with the OS."""
    import platform

    from tests.support.xmpp import DOMAIN, raw_login, running_server

    async with running_server(tmp_path, pki) as h:
        await h.add_user("alice")
        alice = await raw_login(h, "alice")
        await alice.send(
            f"<iq type='get' id='v' to='{DOMAIN}'><query xmlns='jabber:iq:version'/></iq>"
        )
        reply = await alice.read_until(r"</iq>")
        assert f"<os>{platform.system()}</os>".encode() in reply
        alice.close()
