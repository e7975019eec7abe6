"""Third-party clients against the bundled server (issue 2, "Done when"): go-sendxmpp, aioxmpp and
`openssl s_client`, each talking to a server that runs in this test's own event loop on ephemeral
loopback ports. The blocking tools run as asyncio subprocesses so the server keeps serving.

Every test here is `interop`: a missing tool skips it locally with the reason, and fails it when
`CI=true`, where `.ci/run` must have installed it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest
from vines_server.storage.base import RosterItem

from tests.support.venvs import PIP_TIMEOUT
from tests.support.xmpp import (
    DOMAIN,
    PASSWORD,
    PKI,
    Harness,
    disconnect,
    make_pki,
    running_server,
    slixmpp_client,
)

pytestmark = pytest.mark.interop

FOREIGN = "elsewhere.example"  # a domain this server does not host
TOOL_TIMEOUT = 30.0


# ---- tools: skip locally, fail under CI ------------------------------------------------------


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run must install it)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The path of the executable `name`; skips the test without it, or fails under CI=true."""
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} is not installed")
    return path


async def run_tool(
    *argv: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a blocking tool without blocking the loop the server runs on: (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), TOOL_TIMEOUT)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        output = out.decode(errors="replace")
        raise AssertionError(f"{argv[0]} hung; output so far:\n{output}") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vines_pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("interop-pki"))


@pytest.fixture
async def vines(tmp_path: Path, vines_pki: PKI, caplog: pytest.LogCaptureFixture):
    """The bundled server on ephemeral loopback ports with alice, bob and carol."""
    caplog.set_level(logging.INFO, logger="vines_server")
    (tmp_path / "server").mkdir()
    async with running_server(tmp_path / "server", vines_pki) as harness:
        for local in ("alice", "bob", "carol"):
            await harness.add_user(local)
        yield harness


def auth_mechanism(caplog: pytest.LogCaptureFixture, jid: str) -> str | None:
    """The SASL mechanism the server logged for `jid`'s (last) login."""
    found = None
    for record in caplog.records:
        match = re.fullmatch(rf"authenticated \S+ as {re.escape(jid)} with (\S+)", record.message)
        if match:
            found = match.group(1)
    return found


def message_waiter(client: Any, body: str) -> asyncio.Future[Any]:
    """A future for the first slixmpp message whose body is `body`."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_message(msg: Any) -> None:
        if msg["body"] == body and not future.done():
            future.set_result(msg)

    client.add_event_handler("message", on_message)
    return future


# ---- go-sendxmpp -----------------------------------------------------------------------------


def sendxmpp_config(directory: Path, jid: str, port: int, password: str = PASSWORD) -> Path:
    """go-sendxmpp's config file (go-sendxmpp(5)): the credentials never go on the command line.
    `jserver` takes host:port, so the unresolvable `vines.test` is never looked up."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sendxmpprc"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"username: {jid}\npassword: {password}\njserver: 127.0.0.1:{port}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


def go_env(home: Path, ca_file: Path) -> dict[str, str]:
    """go-sendxmpp has no CA-file option, only `-n` (no verification at all). Go's crypto/x509
    reads the trust store from SSL_CERT_FILE / SSL_CERT_DIR on Linux, so pointing those at the test
    CA (and an empty directory) keeps full verification, chain and host name, against our CA only.
    """
    empty = home / "empty-cert-dir"
    empty.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSL_CERT_", "XDG_"))}
    env.update(HOME=str(home), SSL_CERT_FILE=str(ca_file), SSL_CERT_DIR=str(empty))
    return env


async def test_go_sendxmpp_plain_over_starttls_reaches_slixmpp(
    vines: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tool = require_tool("go-sendxmpp")
    bob = await slixmpp_client(vines, "bob@vines.test")
    try:
        body = "hello from go-sendxmpp over STARTTLS"
        received = message_waiter(bob, body)
        config = sendxmpp_config(tmp_path / "gsx", "alice@vines.test", vines.port("c2s-starttls"))
        env = go_env(tmp_path / "gsx", vines.pki.ca_file)
        code, out = await run_tool(
            tool, "-d", "-f", str(config), "bob@vines.test", stdin=f"{body}\n".encode(), env=env
        )
        assert code == 0, out
        assert PASSWORD not in out
        # -d prints what the server sent: STARTTLS offered as required, then proceed
        assert "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>" in out, out
        assert "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" in out, out
        msg = await asyncio.wait_for(received, 10)
        assert str(msg["from"].bare) == "alice@vines.test"
        assert msg["from"].resource, "the server stamps the full JID of the sender"
        assert msg["type"] == "chat"
        assert auth_mechanism(caplog, "alice@vines.test") == "PLAIN"
    finally:
        await disconnect(bob)


async def test_go_sendxmpp_direct_tls(
    vines: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tool = require_tool("go-sendxmpp")
    bob = await slixmpp_client(vines, "bob@vines.test")
    try:
        body = "hello from go-sendxmpp over direct TLS"
        received = message_waiter(bob, body)
        config = sendxmpp_config(tmp_path / "gsx", "alice@vines.test", vines.port("c2s-direct-tls"))
        env = go_env(tmp_path / "gsx", vines.pki.ca_file)
        code, out = await run_tool(
            tool, "-t", "-f", str(config), "bob@vines.test", stdin=f"{body}\n".encode(), env=env
        )
        assert code == 0, out
        msg = await asyncio.wait_for(received, 10)
        assert str(msg["from"].bare) == "alice@vines.test"
        assert auth_mechanism(caplog, "alice@vines.test") == "PLAIN"
    finally:
        await disconnect(bob)


async def test_go_sendxmpp_verifies_the_certificate(
    vines: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With another CA as its only trust anchor go-sendxmpp refuses the server: the CA passed via
    SSL_CERT_FILE above is really what makes it trust us, not a disabled check."""
    tool = require_tool("go-sendxmpp")
    stranger = make_pki(tmp_path / "stranger-pki")
    config = sendxmpp_config(tmp_path / "gsx", "alice@vines.test", vines.port("c2s-starttls"))
    env = go_env(tmp_path / "gsx", stranger.ca_file)
    code, out = await run_tool(tool, "-f", str(config), "bob@vines.test", stdin=b"x\n", env=env)
    assert code != 0, out
    assert re.search(r"certificate|x509", out, re.I), out
    assert auth_mechanism(caplog, "alice@vines.test") is None


async def test_go_sendxmpp_wrong_password_fails(vines: Harness, tmp_path: Path) -> None:
    tool = require_tool("go-sendxmpp")
    config = sendxmpp_config(
        tmp_path / "gsx", "alice@vines.test", vines.port("c2s-starttls"), password="wrong"
    )
    env = go_env(tmp_path / "gsx", vines.pki.ca_file)
    code, out = await run_tool(tool, "-f", str(config), "bob@vines.test", stdin=b"x\n", env=env)
    assert code != 0, out
    assert "auth failure: not-authorized" in out, out


# ---- openssl s_client ------------------------------------------------------------------------


async def test_openssl_s_client_starttls_xmpp(vines: Harness) -> None:
    openssl = require_tool("openssl")
    code, out = await run_tool(
        openssl, "s_client",
        "-starttls", "xmpp", "-xmpphost", DOMAIN,
        "-connect", f"127.0.0.1:{vines.port('c2s-starttls')}",
        "-servername", DOMAIN,
        "-CAfile", str(vines.pki.ca_file),
        "-verify_hostname", DOMAIN, "-verify_return_error",
    )  # fmt: skip
    assert code == 0, out
    assert "Verify return code: 0 (ok)" in out, out
    assert re.search(rf"subject=\s*CN\s*=\s*{re.escape(DOMAIN)}", out), out
    assert re.search(r"New, TLSv1\.[23], Cipher is", out), out


async def test_openssl_s_client_starttls_rejects_unknown_domain(vines: Harness) -> None:
    """`-xmpphost` names the stream's `to`: a domain we do not host never gets to STARTTLS."""
    openssl = require_tool("openssl")
    code, out = await run_tool(
        openssl, "s_client",
        "-starttls", "xmpp", "-xmpphost", FOREIGN,
        "-connect", f"127.0.0.1:{vines.port('c2s-starttls')}",
        "-CAfile", str(vines.pki.ca_file),
    )  # fmt: skip
    assert code != 0, out
    assert "no peer certificate available" in out, out
    assert "BEGIN CERTIFICATE" not in out, out


async def test_openssl_s_client_direct_tls_alpn(vines: Harness) -> None:
    openssl = require_tool("openssl")
    code, out = await run_tool(
        openssl, "s_client",
        "-connect", f"127.0.0.1:{vines.port('c2s-direct-tls')}",
        "-servername", DOMAIN, "-alpn", "xmpp-client",
        "-CAfile", str(vines.pki.ca_file),
        "-verify_hostname", DOMAIN, "-verify_return_error",
    )  # fmt: skip
    assert code == 0, out
    assert "Verify return code: 0 (ok)" in out, out
    assert "ALPN protocol: xmpp-client" in out, out
    assert re.search(rf"subject=\s*CN\s*=\s*{re.escape(DOMAIN)}", out), out


# ---- aioxmpp ---------------------------------------------------------------------------------
# aioxmpp runs in its own venv (the `aioxmpp_python` fixture) as aioxmpp_driver.py: it logs in,
# then answers one JSON line per command; what it receives unasked is kept as numbered events.

DRIVER = Path(__file__).with_name("aioxmpp_driver.py")
# whichever test runs first builds the venv from PyPI (13 s here with pip's cache warm)
builds_aioxmpp_venv = pytest.mark.timeout(PIP_TIMEOUT + 120)


class AioxmppDriver:
    """One aioxmpp_driver.py process; its stderr goes to a file, kept for failure messages."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: Any) -> None:
        self.proc, self.stderr = proc, stderr
        self.lines: list[str] = []
        self.transcript = ""  # stdout and stderr, once ended

    def output(self) -> str:
        self.stderr.seek(0)
        return "".join(self.lines) + self.stderr.read().decode(errors="replace")

    async def read(self) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), TOOL_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"aioxmpp driver hung; output:\n{self.output()}") from None
        if not line:
            await self.proc.wait()
            raise AssertionError(f"aioxmpp driver exited {self.proc.returncode}:\n{self.output()}")
        self.lines.append(line.decode())
        return json.loads(line)

    async def call(self, cmd: str, **arguments: Any) -> dict[str, Any]:
        """Send one command, return its reply ({"ok": true, ...} or {"ok": false, "error"})."""
        self.proc.stdin.write((json.dumps({"cmd": cmd, **arguments}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.read()

    async def check(self, cmd: str, **arguments: Any) -> dict[str, Any]:
        """`call`, asserting the command succeeded."""
        reply = await self.call(cmd, **arguments)
        assert reply["ok"], reply
        return reply

    async def end(self) -> None:
        """Close stdin (the driver then closes its stream and exits); keeps all it printed."""
        self.proc.stdin.close()
        try:
            rest, _ = await asyncio.wait_for(self.proc.communicate(), TOOL_TIMEOUT)
        except TimeoutError:
            self.proc.kill()
            rest, _ = await self.proc.communicate()
        self.lines.append(rest.decode(errors="replace"))
        self.transcript = self.output()


@asynccontextmanager
async def aioxmpp_driver(
    python: Path,
    harness: Harness,
    local: str,
    direct_tls: bool = False,
    ca_file: Path | None = None,
    roster: bool = False,
) -> AsyncIterator[tuple[AioxmppDriver, dict[str, Any]]]:
    """Start the driver as `local`@DOMAIN; yields it and its first line (connected or not). On
    exit it has ended (`proc.returncode` is set) and printed nothing of the password."""
    kind = "c2s-direct-tls" if direct_tls else "c2s-starttls"
    # -I: isolated mode, neither this repository nor PYTHON* variables reach the driver's path
    argv = [
        str(python), "-I", str(DRIVER),
        "--jid", f"{local}@{DOMAIN}",
        "--port", str(harness.port(kind)),
        "--ca-file", str(ca_file or harness.pki.ca_file),
    ]  # fmt: skip
    argv += ["--direct-tls"] * direct_tls + ["--roster"] * roster
    # the password never goes on argv, which any local user can read
    env = {**os.environ, "AIOXMPP_DRIVER_PASSWORD": PASSWORD}
    with tempfile.TemporaryFile() as stderr:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        driver = AioxmppDriver(proc, stderr)
        try:
            yield driver, await driver.read()
        finally:
            await driver.end()
        assert PASSWORD not in driver.transcript


@asynccontextmanager
async def aioxmpp_session(
    python: Path, harness: Harness, local: str, **kwargs: Any
) -> AsyncIterator[tuple[AioxmppDriver, str]]:
    """A logged-in driver (SCRAM, bound, initial presence sent) and its full JID."""
    async with aioxmpp_driver(python, harness, local, **kwargs) as (driver, first):
        assert first["event"] == "connected", (first, driver.output())
        yield driver, first["jid"]
    assert driver.proc.returncode == 0, driver.transcript


@builds_aioxmpp_venv
async def test_aioxmpp_scram_login_and_chat_with_slixmpp(
    vines: Harness, aioxmpp_python: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bob = await slixmpp_client(vines, "bob@vines.test")
    try:
        async with aioxmpp_session(aioxmpp_python, vines, "carol") as (carol, carol_jid):
            assert auth_mechanism(caplog, "carol@vines.test") in ("SCRAM-SHA-256", "SCRAM-SHA-1")
            bare, _, resource = carol_jid.partition("/")
            assert bare == "carol@vines.test"
            assert resource

            to_bob = message_waiter(bob, "from aioxmpp")
            await carol.check("send_message", to="bob@vines.test", body="from aioxmpp")
            got = await asyncio.wait_for(to_bob, 10)
            assert str(got["from"]) == carol_jid

            bob.send_message(mto="carol@vines.test", mbody="from slixmpp", mtype="chat")
            reply = (await carol.check("wait", kind="message", body="from slixmpp"))["event"]
            assert reply["from"] == f"bob@vines.test/{bob.boundjid.resource}"
            assert reply["type"] == "chat"
    finally:
        await disconnect(bob)


@builds_aioxmpp_venv
async def test_aioxmpp_direct_tls_login(
    vines: Harness, aioxmpp_python: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with aioxmpp_session(aioxmpp_python, vines, "carol", direct_tls=True) as (_, jid):
        assert jid.partition("/")[0] == "carol@vines.test"
    assert auth_mechanism(caplog, "carol@vines.test") in ("SCRAM-SHA-256", "SCRAM-SHA-1")


@builds_aioxmpp_venv
async def test_aioxmpp_verifies_the_certificate(
    vines: Harness, aioxmpp_python: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Trusting another CA, aioxmpp refuses the server: its verification is really on."""
    stranger = make_pki(tmp_path / "stranger-pki")
    async with aioxmpp_driver(aioxmpp_python, vines, "carol", ca_file=stranger.ca_file) as (
        driver,
        first,
    ):
        assert first["event"] == "connect-failed", first
    assert driver.proc.returncode == 1, driver.transcript
    error = first["error"]
    if "asyncio.exceptions.InvalidStateError" in error["types"]:
        # aioopenssl 0.6 sets its handshake future twice when the handshake already fails in
        # its first, synchronous step (a server in another process can answer that fast): the
        # second set raises over the verification error, which is its context
        error = error["context"]
    refused = {"aioxmpp.errors.TLSFailure", "OpenSSL.SSL.Error"}
    assert refused & set(error["types"]), driver.transcript
    assert re.search("verif", error["message"]), error
    assert auth_mechanism(caplog, "carol@vines.test") is None
    assert any("TLSV1_ALERT_UNKNOWN_CA" in r.message for r in caplog.records), caplog.text


@builds_aioxmpp_venv
async def test_aioxmpp_subscribe_presence_and_roster(vines: Harness, aioxmpp_python: Path) -> None:
    bob_jid = "bob@vines.test"
    bob = await slixmpp_client(vines, bob_jid)  # auto-authorizes and subscribes back
    try:
        # --roster: carol's roster and presence clients; she approves bob's request to subscribe
        async with aioxmpp_session(aioxmpp_python, vines, "carol", roster=True) as (carol, _):
            await carol.check("roster_set", jid=bob_jid, name="Bob", groups=["Friends"])
            await carol.check("subscribe", jid=bob_jid)
            await carol.check("wait_roster", jid=bob_jid, subscription="both")
            await carol.check("wait", kind="available", **{"from": str(bob.boundjid)})
            assert (await carol.check("most_available", jid=bob_jid))["from"] is not None

            # a plain roster get, as a fresh client would do it
            items = {i["jid"]: i for i in (await carol.check("roster_get"))["items"]}
            assert items[bob_jid]["subscription"] == "both"
            assert items[bob_jid]["name"] == "Bob"
            assert items[bob_jid]["groups"] == ["Friends"]

            # bob goes away: carol sees him unavailable
            mark = (await carol.check("mark"))["index"]
            await disconnect(bob)
            gone = await carol.check("wait", since=mark, kind="unavailable")
            assert gone["event"]["from"].partition("/")[0] == bob_jid

            await carol.check("roster_remove", jid=bob_jid)
            await carol.check("wait_roster", jid=bob_jid, subscription=None)
            items = {i["jid"] for i in (await carol.check("roster_get"))["items"]}
            assert bob_jid not in items
    finally:
        await disconnect(bob)


@builds_aioxmpp_venv
async def test_aioxmpp_receives_offline_messages(vines: Harness, aioxmpp_python: Path) -> None:
    bob = await slixmpp_client(vines, "bob@vines.test")
    try:
        bob.send_message(mto="carol@vines.test", mbody="while you were out 1", mtype="chat")
        bob.send_message(mto="carol@vines.test", mbody="while you were out 2", mtype="chat")
        # the server handles a stream's stanzas in order: once this ping is answered, both
        # messages have been routed to carol's offline store
        await bob.plugin["xep_0199"].ping(jid=DOMAIN, timeout=5)
        async with aioxmpp_session(aioxmpp_python, vines, "carol") as (carol, _):
            first = await carol.check("wait", kind="message", body="while you were out 1")
            second = await carol.check("wait", kind="message", body="while you were out 2")
            assert first["index"] < second["index"]
            for msg in (first["event"], second["event"]):
                assert msg["from"].partition("/")[0] == "bob@vines.test"
                assert msg["delays"], "offline delivery carries a XEP-0203 delay stamp"
                assert msg["delays"][0] is not None
                assert datetime.fromisoformat(msg["delays"][0]).tzinfo is not None
    finally:
        await disconnect(bob)


@builds_aioxmpp_venv
async def test_aioxmpp_disco_ping_version(vines: Harness, aioxmpp_python: Path) -> None:
    async with aioxmpp_session(aioxmpp_python, vines, "carol") as (carol, _):
        info = await carol.check("disco_info", jid=DOMAIN)
        assert ["server", "im"] in info["identities"]
        for feature in (
            "http://jabber.org/protocol/disco#info",
            "urn:xmpp:ping",
            "jabber:iq:version",
        ):
            assert feature in info["features"], info["features"]
        await carol.check("disco_items", jid=DOMAIN)

        await carol.check("ping", jid=DOMAIN)

        version = await carol.check("version", jid=DOMAIN)
        assert version["name"]
        assert version["version"]

        # disco#info on an account: the bare JID answers for it, to whom it shares presence
        # with (to anyone else it looks like a missing account: T-08)
        await vines.server.storage.put_roster_item(
            "bob@vines.test", RosterItem("carol@vines.test", subscription="from")
        )
        account = await carol.check("disco_info", jid="bob@vines.test")
        assert ["account", "registered"] in account["identities"]


@builds_aioxmpp_venv
async def test_aioxmpp_message_to_foreign_domain_bounces(
    vines: Harness, aioxmpp_python: Path
) -> None:
    foreign = f"someone@{FOREIGN}"
    async with aioxmpp_session(aioxmpp_python, vines, "carol") as (carol, _):
        await carol.check("send_message", to=foreign, body="anyone there?")
        bounce = (await carol.check("wait", kind="message", type="error"))["event"]
        assert bounce["from"] == foreign
        assert bounce["error"] == {"type": "cancel", "condition": "not-allowed"}

        # an IQ to the foreign domain fails the same way
        ping = await carol.call("ping", jid=FOREIGN)
        assert not ping["ok"], ping
        assert "aioxmpp.errors.XMPPCancelError" in ping["error"]["types"], ping
        assert ping["error"]["condition"] == "not-allowed", ping
