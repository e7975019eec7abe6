"""`vinesctl components` end to end: a server with two configured components, one of them a
connected slixmpp ComponentXMPP that told the server its load; JSON and the table from the
same typed result."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import LiveServer
from tests.support.xmpp import DOMAIN, PASSWORD, make_pki

ADMIN = f"admin@{DOMAIN}"
ENV = {"VINESCTL_PASSWORD": PASSWORD}
WORK, SPARE = "work.vines.test", "spare.vines.test"


@pytest.fixture
def live(tmp_path: Path, run_cli: Any):
    live = LiveServer(
        tmp_path / "server",
        make_pki(tmp_path / "pki"),
        listeners={"component_port": 0},
        components={WORK: {"secret": "w", "name": "Work queue"}, SPARE: {"secret": "s"}},
    )
    try:
        live.add_user("admin", PASSWORD)
        r = run_cli(
            "profile", "add", "vines", "--jid", ADMIN,
            "--server", f"127.0.0.1:{live.port}", "--ca", str(live.pki.ca_file),
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        yield live
    finally:
        live.stop()


async def connect_worker(live: LiveServer) -> Any:
    import slixmpp

    port = live.harness.port("component")
    component = slixmpp.ComponentXMPP(WORK, "w", "127.0.0.1", port)
    started = asyncio.Event()
    component.add_event_handler("session_start", lambda _e: started.set())
    component.connect()
    await asyncio.wait_for(started.wait(), 10)
    presence = component.make_presence(pto=DOMAIN, pfrom=WORK, pshow="away")
    load = presence.xml.makeelement("{urn:vinesctl:load:0}load", {"jobs": "3", "capacity": "4"})
    presence.xml.append(load)
    presence.send()
    route = live.server.components.routes[WORK]
    while route.presence is None:  # the server has it
        await asyncio.sleep(0.01)
    return component


async def disconnect(component: Any) -> None:
    await component.disconnect()


def test_components_json_and_table(live: LiveServer, run_cli: Any) -> None:
    component = live.call(connect_worker(live))
    r = run_cli("components", "--json", env=ENV)
    assert r.exit_code == 0, r.stderr
    rows = {c["domain"]: c for c in json.loads(r.stdout)["components"]}
    work, spare = rows[WORK], rows[SPARE]
    assert work["connected"] is True and work["name"] == "Work queue"
    assert work["address"].startswith("127.0.0.1:") and work["since"]
    assert work["show"] == "away" and work["load"] == {"jobs": "3", "capacity": "4"}
    assert isinstance(work["stanzas_in"], int) and work["stanzas_in"] >= 1
    assert spare == {
        "domain": SPARE, "name": None, "connected": False, "address": None, "since": None,
        "stanzas_in": 0, "stanzas_out": 0, "show": None, "load": None,
    }  # fmt: skip

    r = run_cli("components", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert WORK in r.stdout and "disconnected" in r.stdout and "jobs=3" in r.stdout

    # disco --tree shows both: the connected one answers, the other one's error is shown
    r = run_cli("disco", DOMAIN, "--tree", "--depth", "1", env=ENV)
    assert r.exit_code == 0, r.stderr
    assert WORK in r.stdout and SPARE in r.stdout and "Work queue" in r.stdout
    assert "remote-server-timeout" in r.stdout  # the spare one is away: the server says so
    live.call(disconnect(component))
