"""Fixtures for the dashboard: a bundled server with an admin and two users, and the console's
connection settings for the admin."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.xmpp import DOMAIN, PASSWORD, PKI, make_pki, running_server
from vinesctl.connection import ConnectionSettings


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def live(tmp_path: Path, pki: PKI):
    async with running_server(tmp_path, pki, presence={"interval": 0.2}) as h:
        for user in ("admin", "alice", "bob"):
            await h.add_user(user)
        yield h


def admin_settings(harness, port: int | None = None) -> ConnectionSettings:
    return ConnectionSettings(
        jid=f"admin@{DOMAIN}",
        password=PASSWORD,
        host="127.0.0.1",
        port=port or harness.port(),
        ca=str(harness.pki.ca_file),
    )


async def until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Wait (letting the loop run) until predicate() is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
