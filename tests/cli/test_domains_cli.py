"""`vinesctl server add-domain` / `remove-domain` on a real detached server: the new domain's
users log in (its self-signed certificate presented) after the reload; once removed, the
domain's streams are refused. vines.toml itself is never rewritten without --edit-config."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.cli.test_server_cli import vinesctl
from tests.cli.test_server_ops import wait_until

NEW = "new.test"


def port_of(config: Path) -> int:
    state = json.loads(config.with_name("vines.state.json").read_text())
    return next(li["port"] for li in state["listeners"] if li["kind"] == "c2s-starttls")


def can_log_in(port: int, jid: str, password: str, ca: Path) -> bool:
    import slixmpp

    async def attempt() -> bool:
        client = slixmpp.ClientXMPP(jid, password)
        client.ca_certs = str(ca)
        client.enable_direct_tls = False
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        client.add_event_handler("session_start", lambda _e: done.done() or done.set_result(True))
        for event in ("failed_auth", "stream_error", "connection_failed", "disconnected"):
            client.add_event_handler(event, lambda _e: done.done() or done.set_result(False))
        client.connect(host="127.0.0.1", port=port)
        try:
            return await asyncio.wait_for(done, 15)
        finally:
            client.disconnect()
            await asyncio.sleep(0)

    return asyncio.run(attempt())


def reloads(log: Path) -> int:
    return log.read_text().count("configuration reloaded")


def test_add_and_remove_a_domain(running_bundled, cli_env):
    config = running_bundled
    log = config.with_name("vines.log")
    before = config.read_text()
    r = vinesctl("server", "add-domain", NEW, "--config", str(config), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    fragment = config.with_name("conf.d") / f"{NEW}.toml"
    assert data["fragment"] == str(fragment) and fragment.is_file()
    assert data["reload"]["signalled"] is True
    assert config.read_text() == before  # the main file untouched
    wait_until(lambda: reloads(log) == 1)
    assert "changed: domains, certificates" in log.read_text()
    r = vinesctl("server", "status", "--config", str(config), "--json", env=cli_env)
    assert json.loads(r.stdout)["domains"] == ["localhost", NEW]

    env = cli_env | {"VINESCTL_NEW_PASSWORD": "carol pw"}
    r = vinesctl("user", "add", f"carol@{NEW}", "--config", str(config), env=env)
    assert r.returncode == 0, r.stderr
    ca = Path(data["certificate"])  # self-signed: the certificate is its own anchor
    assert can_log_in(port_of(config), f"carol@{NEW}", "carol pw", ca)

    r = vinesctl("server", "add-domain", NEW, "--config", str(config), env=cli_env)
    assert r.returncode == 2 and "already hosted" in r.stderr

    r = vinesctl("server", "remove-domain", "localhost", "--config", str(config), env=cli_env)
    assert r.returncode == 2 and "defined in" in r.stderr and "itself" in r.stderr

    r = vinesctl("server", "remove-domain", NEW.upper(), "--config", str(config), env=cli_env)
    assert r.returncode == 0, r.stderr
    assert not fragment.exists() and ca.exists()
    wait_until(lambda: reloads(log) == 2)
    assert not can_log_in(port_of(config), f"carol@{NEW}", "carol pw", ca)


def test_without_the_include_line(running_bundled, cli_env):
    config = running_bundled
    text = config.read_text().replace('include = ["conf.d/*.toml"]\n', "")
    config.write_text(text)
    r = vinesctl("server", "add-domain", NEW, "--config", str(config), env=cli_env)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and 'include = ["conf.d/*.toml"]' in r.stderr
    assert config.read_text() == text and not config.with_name("conf.d").exists()

    r = vinesctl("server", "add-domain", NEW, "--config", str(config), "--edit-config", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert config.read_text().startswith(text.split("[server]")[0] + 'include = ["conf.d/*.toml"]')
    r = vinesctl("server", "status", "--config", str(config), "--json", env=cli_env)
    assert NEW in [c["domain"] for c in json.loads(r.stdout)["certificates"]]
