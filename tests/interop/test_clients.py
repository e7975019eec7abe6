"""Third-party clients against the bundled server (issue 2, "Done when"): go-sendxmpp, aioxmpp and
`openssl s_client`, each talking to a server that runs in this test's own event loop on ephemeral
loopback ports. The blocking tools run as asyncio subprocesses so the server keeps serving.

Every test here is `interop`: a missing tool skips it locally with the reason, and fails it when
`CI=true`, where `.ci/run` must have installed it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import shutil
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

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

pytestmark = [
    pytest.mark.interop,
    # aioxmpp 0.13's host name check calls the deprecated ssl.match_hostname
    pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning"),
]

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


def require_module(name: str) -> Any:
    """Import the Python package `name`; skips the test without it, or fails under CI=true."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # aioxmpp also fails here when pytz or pyOpenSSL<24.3 is missing
        _missing(f"python package {name} is not importable: {exc}")


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


def aioxmpp_security_layer(aioxmpp: Any, ca_file: Path) -> Any:
    """aioxmpp's default PKIX verifier (chain plus host name check) with the test CA added to the
    pyOpenSSL context it builds; no pinning, verification stays on."""
    from aioxmpp import security_layer

    def context_factory() -> Any:
        ctx = security_layer.default_ssl_context()
        ctx.load_verify_locations(str(ca_file))
        return ctx

    return aioxmpp.make_security_layer(PASSWORD, ssl_context_factory=context_factory)


def aioxmpp_client(
    harness: Harness, local: str, direct_tls: bool = False, ca_file: Path | None = None
) -> Any:
    aioxmpp = require_module("aioxmpp")
    from aioxmpp import connector

    if direct_tls:
        peer = [("127.0.0.1", harness.port("c2s-direct-tls"), connector.XMPPOverTLSConnector())]
    else:
        peer = [("127.0.0.1", harness.port("c2s-starttls"), connector.STARTTLSConnector())]
    client = aioxmpp.Client(
        aioxmpp.JID.fromstr(f"{local}@{DOMAIN}"),
        aioxmpp_security_layer(aioxmpp, ca_file or harness.pki.ca_file),
        override_peer=peer,
        max_initial_attempts=1,
    )
    # initial presence goes out as the stream is established (offline messages follow it)
    client.summon(aioxmpp.PresenceServer).set_presence(aioxmpp.PresenceState(True))
    return client


class Inbox:
    """Collects the messages an aioxmpp client receives; `wait(pred)` returns the first match."""

    def __init__(self, client: Any) -> None:
        import aioxmpp.dispatcher

        self.messages: list[Any] = []
        self._changed = asyncio.Event()
        dispatcher = client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        for type_ in aioxmpp.MessageType:
            dispatcher.register_callback(type_, None, self._on_message)

    def _on_message(self, msg: Any) -> None:
        self.messages.append(msg)
        self._changed.set()

    async def wait(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        async def scan() -> Any:
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        return msg
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching message; got {self.messages!r}") from None


def body_of(msg: Any) -> str | None:
    return msg.body.any() if msg.body else None


@asynccontextmanager
async def aioxmpp_session(harness: Harness, local: str, **kwargs: Any) -> AsyncIterator[Any]:
    """A connected aioxmpp client (SCRAM login, bound, initial presence sent) and its inbox."""
    client = aioxmpp_client(harness, local, **kwargs)
    inbox = Inbox(client)
    async with client.connected():
        yield client, inbox


async def wait_for(
    predicate: Callable[[], bool],
    timeout: float = 10.0,
    what: str = "",
    state: Callable[[], Any] = lambda: None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}; state {state()!r}")
        await asyncio.sleep(0.05)


async def test_aioxmpp_scram_login_and_chat_with_slixmpp(
    vines: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    aioxmpp = require_module("aioxmpp")
    bob = await slixmpp_client(vines, "bob@vines.test")
    try:
        async with aioxmpp_session(vines, "carol") as (client, inbox):
            assert auth_mechanism(caplog, "carol@vines.test") in ("SCRAM-SHA-256", "SCRAM-SHA-1")
            assert str(client.local_jid.bare()) == "carol@vines.test"
            assert client.local_jid.resource

            to_bob = message_waiter(bob, "from aioxmpp")
            msg = aioxmpp.Message(
                to=aioxmpp.JID.fromstr("bob@vines.test"), type_=aioxmpp.MessageType.CHAT
            )
            msg.body[None] = "from aioxmpp"
            await client.send(msg)
            got = await asyncio.wait_for(to_bob, 10)
            assert str(got["from"]) == str(client.local_jid)

            bob.send_message(mto="carol@vines.test", mbody="from slixmpp", mtype="chat")
            reply = await inbox.wait(lambda m: body_of(m) == "from slixmpp")
            assert reply.from_.bare() == aioxmpp.JID.fromstr("bob@vines.test")
            assert reply.from_.resource == bob.boundjid.resource
            assert reply.type_ == aioxmpp.MessageType.CHAT
    finally:
        await disconnect(bob)


async def test_aioxmpp_direct_tls_login(vines: Harness, caplog: pytest.LogCaptureFixture) -> None:
    require_module("aioxmpp")
    async with aioxmpp_session(vines, "carol", direct_tls=True) as (client, _inbox):
        assert str(client.local_jid.bare()) == "carol@vines.test"
    assert auth_mechanism(caplog, "carol@vines.test") in ("SCRAM-SHA-256", "SCRAM-SHA-1")


async def test_aioxmpp_verifies_the_certificate(
    vines: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Trusting another CA, aioxmpp refuses the server: its verification is really on."""
    aioxmpp = require_module("aioxmpp")
    stranger = make_pki(tmp_path / "stranger-pki")
    client = aioxmpp_client(vines, "carol", ca_file=stranger.ca_file)
    openssl = require_module("OpenSSL")
    with pytest.raises((aioxmpp.errors.TLSFailure, openssl.SSL.Error), match="verif"):
        async with client.connected():
            pass
    assert auth_mechanism(caplog, "carol@vines.test") is None
    assert any("TLSV1_ALERT_UNKNOWN_CA" in r.message for r in caplog.records), caplog.text


async def test_aioxmpp_subscribe_presence_and_roster(vines: Harness) -> None:
    aioxmpp = require_module("aioxmpp")
    import aioxmpp.roster.xso as roster_xso

    bob_jid = aioxmpp.JID.fromstr("bob@vines.test")
    bob = await slixmpp_client(vines, "bob@vines.test")  # auto-authorizes and subscribes back
    try:
        client = aioxmpp_client(vines, "carol")
        roster = client.summon(aioxmpp.RosterClient)
        presence = client.summon(aioxmpp.PresenceClient)
        available: list[Any] = []
        presence.on_available.connect(lambda full_jid, stanza: available.append(full_jid))
        subscribers: list[Any] = []

        def on_subscribe(stanza: Any) -> None:  # bob subscribes back: carol approves
            subscribers.append(stanza.from_)
            roster.approve(stanza.from_)

        roster.on_subscribe.connect(on_subscribe)
        async with client.connected():
            await roster.set_entry(bob_jid, name="Bob", add_to_groups={"Friends"})
            roster.subscribe(bob_jid)
            await wait_for(
                lambda: bob_jid in roster.items and roster.items[bob_jid].subscription == "both",
                what="a mutual subscription with bob",
                state=lambda: (roster.items.get(bob_jid), subscribers),
            )
            await wait_for(lambda: any(j.bare() == bob_jid for j in available), what="bob online")
            assert presence.get_most_available_stanza(bob_jid) is not None

            # a plain roster get, as a fresh client would do it
            result = await client.send(
                aioxmpp.IQ(type_=aioxmpp.IQType.GET, payload=roster_xso.Query())
            )
            items = {item.jid: item for item in result.items}
            assert items[bob_jid].subscription == "both"
            assert items[bob_jid].name == "Bob"
            assert {g.name for g in items[bob_jid].groups} == {"Friends"}

            # bob goes away: carol sees him unavailable
            gone = asyncio.get_running_loop().create_future()
            presence.on_bare_unavailable.connect(
                lambda stanza: gone.done() or gone.set_result(stanza)
            )
            await disconnect(bob)
            stanza = await asyncio.wait_for(gone, 10)
            assert stanza.from_.bare() == bob_jid

            await roster.remove_entry(bob_jid)
            await wait_for(lambda: bob_jid not in roster.items, what="bob removed")
            result = await client.send(
                aioxmpp.IQ(type_=aioxmpp.IQType.GET, payload=roster_xso.Query())
            )
            assert bob_jid not in {item.jid for item in result.items}
    finally:
        await disconnect(bob)


async def test_aioxmpp_receives_offline_messages(vines: Harness) -> None:
    aioxmpp = require_module("aioxmpp")
    bob = await slixmpp_client(vines, "bob@vines.test")
    try:
        bob.send_message(mto="carol@vines.test", mbody="while you were out 1", mtype="chat")
        bob.send_message(mto="carol@vines.test", mbody="while you were out 2", mtype="chat")
        # the server handles a stream's stanzas in order: once this ping is answered, both
        # messages have been routed to carol's offline store
        await bob.plugin["xep_0199"].ping(jid=DOMAIN, timeout=5)
        async with aioxmpp_session(vines, "carol") as (_client, inbox):
            first = await inbox.wait(lambda m: body_of(m) == "while you were out 1")
            second = await inbox.wait(lambda m: body_of(m) == "while you were out 2")
            assert inbox.messages.index(first) < inbox.messages.index(second)
            for msg in (first, second):
                assert msg.from_.bare() == aioxmpp.JID.fromstr("bob@vines.test")
                assert msg.xep0203_delay, "offline delivery carries a XEP-0203 delay stamp"
                assert msg.xep0203_delay[0].stamp is not None
    finally:
        await disconnect(bob)


async def test_aioxmpp_disco_ping_version(vines: Harness) -> None:
    aioxmpp = require_module("aioxmpp")
    ping = require_module("aioxmpp.ping")
    version_service = require_module("aioxmpp.version")

    server = aioxmpp.JID.fromstr(DOMAIN)
    async with aioxmpp_session(vines, "carol") as (client, _inbox):
        disco = client.summon(aioxmpp.DiscoClient)
        info = await disco.query_info(server, require_fresh=True)
        assert ("server", "im") in {(i.category, i.type_) for i in info.identities}
        for feature in (
            "http://jabber.org/protocol/disco#info",
            "urn:xmpp:ping",
            "jabber:iq:version",
        ):
            assert feature in info.features, sorted(info.features)
        items = await disco.query_items(server, require_fresh=True)
        assert items is not None

        await ping.ping(client, server)

        # query_version only needs .send(); Client.send is the non-deprecated one
        version = await version_service.query_version(client, server)
        assert version.name
        assert version.version

        # disco#info on an account: the bare JID answers for it
        account = await disco.query_info(aioxmpp.JID.fromstr("bob@vines.test"), require_fresh=True)
        assert ("account", "registered") in {(i.category, i.type_) for i in account.identities}


async def test_aioxmpp_message_to_foreign_domain_bounces(vines: Harness) -> None:
    aioxmpp = require_module("aioxmpp")
    ping = require_module("aioxmpp.ping")
    foreign = aioxmpp.JID.fromstr(f"someone@{FOREIGN}")
    async with aioxmpp_session(vines, "carol") as (client, inbox):
        msg = aioxmpp.Message(to=foreign, type_=aioxmpp.MessageType.CHAT)
        msg.body[None] = "anyone there?"
        await client.send(msg)
        bounce = await inbox.wait(lambda m: m.type_ == aioxmpp.MessageType.ERROR)
        assert bounce.from_ == foreign
        assert bounce.error.type_ == aioxmpp.ErrorType.CANCEL
        assert bounce.error.condition == aioxmpp.ErrorCondition.NOT_ALLOWED

        # an IQ to the foreign domain fails the same way
        with pytest.raises(aioxmpp.errors.XMPPCancelError) as excinfo:
            await ping.ping(client, aioxmpp.JID.fromstr(FOREIGN))
        assert excinfo.value.condition == aioxmpp.ErrorCondition.NOT_ALLOWED
