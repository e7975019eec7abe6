"""The collector around a command: paused while modules load and a session logs in (their
objects live until exit), running again for the command's own work and afterwards (a watch or
the dashboard may run for hours), and never switched on when someone else switched it off."""

from __future__ import annotations

import gc
from typing import Any

from tests.cli.conftest import LiveServer
from tests.support.xmpp import DOMAIN, PASSWORD
from vinesctl import collector
from vinesctl.commands.remote import run_with
from vinesctl.connection import ConnectionSettings


def settings(live: LiveServer, password: str = PASSWORD) -> ConnectionSettings:
    return ConnectionSettings(
        f"admin@{DOMAIN}", password, "127.0.0.1", live.port, str(live.pki.ca_file)
    )


def test_a_session_pauses_collection_until_login_only(live_server: LiveServer):
    live_server.add_user("admin", PASSWORD)
    seen: list[bool] = []

    async def work(client: Any, conn: Any, _s: Any) -> str:
        seen.append(gc.isenabled())
        return client.boundjid.bare

    assert run_with(settings(live_server), True, work) == f"admin@{DOMAIN}"
    assert seen == [True]
    assert gc.isenabled()


def test_a_failed_login_resumes_collection(live_server: LiveServer):
    live_server.add_user("admin", PASSWORD)

    async def work(client: Any, conn: Any, _s: Any) -> None:
        raise AssertionError("not logged in: no work")

    try:
        run_with(settings(live_server, "a wrong password"), True, work)
    except Exception as exc:
        assert "authentication failed" in str(exc)
    else:
        raise AssertionError("logged in with a wrong password")
    assert gc.isenabled()


def test_a_pause_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        resume = collector.pause()
        assert not gc.isenabled()
        resume()
        assert not gc.isenabled()
    finally:
        gc.enable()
    resume = collector.pause()
    assert not gc.isenabled()
    resume()
    resume()
    assert gc.isenabled()


def test_what_an_import_allocated_is_frozen_after_it():
    """The first pass after the pause would otherwise walk every object the import made."""
    gc.unfreeze()
    try:
        with collector.loading():
            assert not gc.isenabled()
            made = [[n] for n in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
    finally:
        gc.unfreeze()
