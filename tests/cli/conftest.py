"""Fixtures for CLI tests against a live bundled server.

`run_cli` runs the console synchronously in the test's thread, and the console runs its own
event loop (`asyncio.run`), so the server cannot live in the test's loop: `live_server` runs it
in a background thread with a loop of its own. `live.call(coro)` runs a coroutine there (to add
accounts, read the store, or drive a slixmpp client) and returns its result.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_server_cli import vinesctl
from tests.server.conftest import postgres, redis  # noqa: F401  (the same throw-away servers)
from tests.support.xmpp import DOMAIN, OTHER, PKI, Harness, make_pki, running_server


class LiveServer:
    def __init__(self, tmp: Path, pki: PKI, **sections: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vines-server")
        self.thread.daemon = True
        self.thread.start()
        tmp.mkdir(parents=True, exist_ok=True)
        self._cm = running_server(tmp, pki, **sections)
        self.harness: Harness = self.call(self._cm.__aenter__())
        self.pki = pki

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def port(self) -> int:
        return self.harness.port()

    @property
    def server(self) -> Any:
        return self.harness.server

    def add_user(self, local: str, password: str, domain: str = DOMAIN) -> str:
        return self.call(self.harness.add_user(local, password, domain))

    def account(self, jid: str) -> Any:
        return self.call(self.server.storage.get_account(jid))

    def stop(self) -> None:
        async def collect() -> None:  # slixmpp clients clean up through this loop
            gc.collect()

        try:
            self.call(self._cm.__aexit__(None, None, None))
            self.call(collect())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A bundled server (domains vines.test and other.test) on 127.0.0.1 in its own thread;
    admins: admin@vines.test and boss@other.test (an admin of the other domain)."""
    pki = make_pki(tmp_path / "pki")
    live = LiveServer(
        tmp_path / "server",
        pki,
        server={"admins": [f"admin@{DOMAIN}", f"boss@{OTHER}"]},
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def cli_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINESCTL_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["HOME"] = str(tmp_path / "home")
    return env


def init_server(tmp_path: Path, env: dict) -> Path:
    """`vinesctl server init` in tmp_path/srv (free ports); its vines.toml."""
    directory = tmp_path / "srv"
    r = vinesctl(
        "server", "init", "--dir", str(directory), "--port", "0", "--direct-tls-port", "0",
        env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return directory / "vines.toml"


@pytest.fixture
def running_bundled(tmp_path, cli_env) -> Iterator[Path]:
    """A detached server started by `vinesctl server start`; yields its vines.toml."""
    config = init_server(tmp_path, cli_env)
    r = vinesctl("server", "start", "--config", str(config), env=cli_env)
    assert r.returncode == 0, r.stderr
    try:
        yield config
    finally:
        vinesctl("server", "stop", "--config", str(config), env=cli_env)
