"""`[server] event_loop`: asyncio's loop (the default), uvloop, or "auto" (uvloop when installed).

The end-to-end test runs the real main loop (`python -m vines_server`) on uvloop: TLS through
our MemoryBIO transport, SASL, binding and a routed message all work on uvloop's transports.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest
from vines_server.config import ConfigError, parse
from vines_server.main import loop_factory

from tests.server import test_admin_process as process
from tests.support.xmpp import DOMAIN, PASSWORD, disconnect, slixmpp_client

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None
CAROL = f"carol@{DOMAIN}"


def _config(event_loop: str):
    return parse(
        {
            "server": {"event_loop": event_loop},
            "domains": {"example.test": {"certificate": "c.pem", "key": "k.pem"}},
        }
    )


def test_event_loop_defaults_to_asyncio_and_refuses_unknown_names():
    assert _config("auto").event_loop == "auto"
    assert parse({"domains": {"example.test": {"certificate": "c", "key": "k"}}}).event_loop == (
        "asyncio"
    )
    with pytest.raises(ConfigError, match=r"server\.event_loop must be one of asyncio, uvloop"):
        _config("tokio")


def test_asyncio_is_asyncios_own_loop():
    assert loop_factory("asyncio") is None


def test_uvloop_named_but_missing_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'vinesctl\[uvloop\]'"):
        loop_factory("uvloop")
    assert loop_factory("auto") is None  # auto falls back to asyncio's loop


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed (the uvloop extra)")
def test_auto_and_uvloop_take_uvloop_when_installed():
    import uvloop

    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed (the uvloop extra)")
async def test_the_server_serves_on_uvloop(tmp_path, pki):
    await process.create_accounts(tmp_path, PASSWORD, process.ADMIN, CAROL)
    config = process.write_config(tmp_path, pki)
    config.write_text(config.read_text().replace("[server]\n", '[server]\nevent_loop = "uvloop"\n'))
    state_file, log = tmp_path / "vines.state.json", tmp_path / "vines.log"
    proc = await process.start_logged(config, log)
    try:
        await process.wait_for(state_file.exists)
        assert "event loop: uvloop" in log.read_text()
        live = process.Live(pki, state_file)
        carol = await slixmpp_client(live, CAROL)
        admin = await slixmpp_client(live, process.ADMIN)
        inbox: asyncio.Queue = asyncio.Queue()
        carol.add_event_handler("message", inbox.put_nowait)
        for n in range(3):
            admin.send_message(mto=str(carol.boundjid), mbody=f"hello {n}", mtype="chat")
        bodies = [(await asyncio.wait_for(inbox.get(), 10))["body"] for _ in range(3)]
        assert bodies == ["hello 0", "hello 1", "hello 2"]  # delivered, in order
        await disconnect(carol, admin)
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
