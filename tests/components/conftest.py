"""A server with a component listener on loopback and two configured components; slixmpp's
ComponentXMPP as the real third-party component."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.xmpp import DOMAIN, PKI, Harness, make_pki, running_server

WORK = "work.vines.test"
SPARE = "spare.vines.test"
SECRET = "s3cret-for-work"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def component_sections(tmp: Path, **listener: Any) -> dict[str, Any]:
    (tmp / "spare.secret").write_text("spare-secret\n")
    return {
        "listeners": {"component_port": 0, **listener},
        "components": {
            WORK: {"secret": SECRET, "name": "Work queue"},
            SPARE: {"secret_file": "spare.secret", "name": "Spare", "conflict": "kick_old"},
        },
    }


@pytest.fixture
async def harness(tmp_path: Path, pki: PKI):
    async with running_server(tmp_path, pki, **component_sections(tmp_path)) as h:
        await h.add_user("alice")
        await h.add_user("admin")
        yield h


async def connect_component(
    harness: Harness, domain: str = WORK, secret: str = SECRET, kind: str = "component"
) -> Any:
    """A slixmpp ComponentXMPP with its handshake done."""
    import slixmpp

    component = slixmpp.ComponentXMPP(domain, secret, "127.0.0.1", harness.port(kind))
    if kind == "component-tls":
        # ComponentXMPP has no direct-TLS switch: a TLS "service" makes its connect loop wrap
        # the socket, checking the certificate for the server's domain; no plaintext then
        component.tls_services = {"_xmpps-component"}
        component.default_domain = DOMAIN
        component.enable_plaintext = False
        component.ca_certs = str(harness.pki.ca_file)
    for plugin in ("xep_0030", "xep_0092", "xep_0199"):
        component.register_plugin(plugin)
    started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    component.add_event_handler("session_start", lambda _: started.done() or started.set_result(1))
    component.connect()
    await asyncio.wait_for(started, 10)
    return component
