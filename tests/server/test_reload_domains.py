"""Reloading vines.toml changes the hosted domains without a restart: a new domain's certificate
is presented and its users log in and get messages; a removed domain's streams end with
<host-gone/> (RFC 6120 4.9.3.6)."""

from __future__ import annotations

import asyncio

import pytest
from vines_server.config import ConfigError

from tests.support.xmpp import (
    DOMAIN,
    OTHER,
    Harness,
    disconnect,
    make_pki,
    running_server,
    slixmpp_client,
)

THIRD = "third.test"


def config_text(tmp_path, pki, domains: dict[str, object]) -> str:
    tables = "".join(
        f'[domains."{name}"]\ncertificate = "{p.cert}"\nkey = "{p.key}"\n'
        for name, p in domains.items()
    )
    return f"""
[server]
admins = ["admin@{DOMAIN}"]
{tables}
[listeners]
bind = ["127.0.0.1"]
c2s_port = 0
c2s_direct_tls_port = 0
[storage]
path = "{tmp_path / "vines.sqlite"}"
[limits]
pbkdf2_iterations = 4096
"""


async def test_reload_adds_and_removes_domains(tmp_path, pki):
    third_pki = make_pki(tmp_path / "pki3", (THIRD,))  # its own CA: only THIRD's clients trust it
    async with running_server(tmp_path, pki) as h:
        await h.add_user("alice")
        await h.add_user("bob", domain=OTHER)
        await h.add_user("carol", domain=THIRD)
        bob = await slixmpp_client(h, f"bob@{OTHER}")
        errors: asyncio.Queue = asyncio.Queue()
        bob.add_event_handler("stream_error", errors.put_nowait)
        alice = await slixmpp_client(h, f"alice@{DOMAIN}")
        carol = None
        try:
            (tmp_path / "vines.toml").write_text(
                config_text(tmp_path, pki, {DOMAIN: pki, THIRD: third_pki})
            )
            done = await h.server.reload()
            assert "domains" in done.changed and "certificates" in done.changed
            assert done.restart == []
            assert h.server.domains == {DOMAIN, THIRD}

            error = await asyncio.wait_for(errors.get(), 10)
            assert error["condition"] == "host-gone"

            carol = await slixmpp_client(Harness(h.server, third_pki), f"carol@{THIRD}")
            got: asyncio.Future = asyncio.get_running_loop().create_future()
            carol.add_event_handler(
                "message", lambda m: got.done() or got.set_result(str(m["body"]))
            )
            alice.send_message(mto=f"carol@{THIRD}", mbody="welcome aboard", mtype="chat")
            assert await asyncio.wait_for(got, 10) == "welcome aboard"
        finally:
            await disconnect(*(c for c in (alice, bob, carol) if c is not None))


async def test_a_new_domain_without_its_certificate_changes_nothing(tmp_path, pki):
    async with running_server(tmp_path, pki) as h:
        missing = make_pki(tmp_path / "pki3", (THIRD,))
        missing.cert.unlink()
        (tmp_path / "vines.toml").write_text(
            config_text(tmp_path, pki, {DOMAIN: pki, OTHER: pki, THIRD: missing})
        )
        with pytest.raises(ConfigError, match=f"domains.{THIRD}.certificate"):
            await h.server.reload()
        assert h.server.domains == {DOMAIN, OTHER}
