"""Test harness for the bundled server: generated certificates, a server on ephemeral loopback
ports, a raw TLS client that sends exact bytes, and logged-in slixmpp clients."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vines_server import certs, config
from vines_server.net.tls import TLSSession
from vines_server.server import Server
from vines_server.xmpp.sasl.credentials import derive_all

DOMAIN = "vines.test"
OTHER = "other.test"
PASSWORD = "correct horse battery staple"
TEST_ITERATIONS = 4096  # keeps tests quick; production default is 10 000


@dataclass
class PKI:
    directory: Path
    ca_file: Path
    cert: Path
    key: Path


def make_pki(directory: Path, domains: tuple[str, ...] = (DOMAIN, OTHER)) -> PKI:
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = certs.make_ca("vines test CA")
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(certs.serialization.Encoding.PEM))
    cert, key = certs.make_certificate(list(domains), issuer=(ca_cert, ca_key))
    certs.write_pem(cert, key, directory / "server.crt", directory / "server.key")
    return PKI(directory, ca_file, directory / "server.crt", directory / "server.key")


def server_config(pki: PKI, tmp: Path, backend: str = "sqlite", **sections: Any) -> config.Config:
    raw: dict[str, Any] = {
        "server": {"admins": [f"admin@{DOMAIN}"]},
        "domains": {
            d: {"certificate": str(pki.cert), "key": str(pki.key)} for d in (DOMAIN, OTHER)
        },
        "listeners": {"bind": ["127.0.0.1"], "c2s_port": 0, "c2s_direct_tls_port": 0},
        "storage": {"backend": backend, "path": str(tmp / "vines.sqlite")},
        "limits": {"pbkdf2_iterations": TEST_ITERATIONS},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config.parse(raw, tmp / "vines.toml")


@dataclass
class Harness:
    server: Server
    pki: PKI
    users: dict[str, str] = field(default_factory=dict)

    def port(self, kind: str = "c2s-starttls") -> int:
        return next(li.port for li in self.server.listening if li.kind == kind)

    async def add_user(self, local: str, password: str = PASSWORD, domain: str = DOMAIN) -> str:
        jid = f"{local}@{domain}"
        await self.server.storage.create_account(jid, derive_all(password, TEST_ITERATIONS))
        self.users[jid] = password
        return jid


@asynccontextmanager
async def running_server(tmp: Path, pki: PKI, backend: str = "sqlite", **sections: Any):
    server = Server(server_config(pki, tmp, backend, **sections))
    await server.start()
    try:
        yield Harness(server, pki)
    finally:
        await server.stop()


# ---- raw client ------------------------------------------------------------------------------


class RawClient:
    """Sends exact bytes, reads what comes back; TLS through our own sans-I/O session."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ca: Path):
        self.reader, self.writer, self.ca = reader, writer, ca
        self.tls: TLSSession | None = None
        self.buffer = b""
        self.closed = False

    @classmethod
    async def connect(cls, port: int, ca: Path, host: str = "127.0.0.1", direct: bool = False):
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer, ca)
        if direct:
            await client.handshake(alpn=["xmpp-client"])
        return client

    def _context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    async def handshake(self, server_name: str = DOMAIN, alpn: list[str] | None = None) -> None:
        self.tls = TLSSession(self._context(alpn), server_side=False, server_hostname=server_name)
        self.writer.write(self.tls.outgoing())
        while not self.tls.handshake_done:
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            if not data:
                raise ConnectionError("closed during the TLS handshake")
            self.buffer += self.tls.receive(data)
            self.writer.write(self.tls.outgoing())

    async def send(self, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        if self.tls is not None:
            self.tls.send(data)
            self.writer.write(self.tls.outgoing())
        else:
            self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, pattern: bytes | str, timeout: float = 5.0) -> bytes:
        """Read until `pattern` (a regex) matches the buffer; returns and consumes up to it."""
        pattern = pattern.encode() if isinstance(pattern, str) else pattern
        regex = re.compile(pattern, re.S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            match = regex.search(self.buffer)
            if match:
                out, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
                return out
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closed:
                raise AssertionError(f"{pattern!r} not received; got {self.buffer[-2000:]!r}")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), remaining)
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                continue
            if self.tls is not None:
                try:
                    data = self.tls.receive(data)
                except ssl.SSLError:
                    self.closed = True
                    continue
            self.buffer += data

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        with suppress(AssertionError):
            await self.read_until(rb"\Z(?!x)x", timeout)  # never matches: read to EOF
        return self.closed

    async def open_stream(self, to: str = DOMAIN) -> bytes:
        await self.send(
            f"<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xml:lang='en' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        return await self.read_until(rb"</stream:features>")

    async def starttls(self, to: str = DOMAIN) -> bytes:
        """Header, STARTTLS, handshake, header again: returns the post-TLS features."""
        await self.open_stream(to)
        await self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self.read_until(rb"<proceed[^>]*/>")
        await self.handshake(to)
        return await self.open_stream(to)

    async def login(
        self, user: str, password: str = PASSWORD, to: str = DOMAIN, resource: str | None = None
    ) -> bytes:
        """STARTTLS, SASL PLAIN, restart, bind (`resource`, or one the server picks): ready
        to send stanzas. Returns the bind reply."""
        await self.starttls(to)
        await self.auth_plain(user, password)
        await self.read_until(rb"<success[^>]*/>|<success.*?</success>")
        await self.open_stream(to)
        asked = f"<resource>{resource}</resource>" if resource is not None else ""
        await self.send(
            "<iq type='set' id='b1'>"
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{asked}</bind></iq>"
        )
        return await self.read_until(rb"</iq>")

    async def auth_plain(self, user: str, password: str) -> None:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await self.send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        )

    async def expect_stream_error(self, condition: str, timeout: float = 5.0) -> bytes:
        data = await self.read_until(rb"</stream:stream>", timeout)
        expected = f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'"
        assert expected.encode() in data, data[-600:]
        assert await self.closed_by_server(timeout), "server kept the connection open"
        return data

    def close(self) -> None:
        self.writer.close()


async def raw_login(harness: Harness, local: str, password: str = PASSWORD) -> RawClient:
    """A RawClient over STARTTLS, authenticated as local@DOMAIN and bound."""
    raw = await RawClient.connect(harness.port(), harness.pki.ca_file)
    await raw.login(local, password)
    return raw


# ---- slixmpp clients -------------------------------------------------------------------------


async def slixmpp_client(
    harness: Harness,
    jid: str,
    password: str = PASSWORD,
    plugins: tuple[str, ...] = (),
    handlers: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """A logged-in slixmpp ClientXMPP (session started, roster fetched, presence sent);
    `plugins` are registered before it connects (those that take part in the negotiation), and
    so are `handlers` (event -> handler: what arrives at login, offline messages say)."""
    import slixmpp

    client = slixmpp.ClientXMPP(jid, password, **kwargs)
    client.ca_certs = str(harness.pki.ca_file)
    client.enable_direct_tls = False  # the STARTTLS port; slixmpp would try direct TLS first
    for plugin in (
        "xep_0030",
        "xep_0199",
        "xep_0092",
        "xep_0012",
        "xep_0202",
        "xep_0054",
        *plugins,
    ):
        client.register_plugin(plugin)
    started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def on_start(_event: Any) -> None:
        await client.get_roster()
        client.send_presence()
        if not started.done():
            started.set_result(True)

    def on_fail(_event: Any) -> None:
        if not started.done():
            started.set_exception(ConnectionError(f"authentication failed for {jid}"))

    for event, handler in (handlers or {}).items():
        client.add_event_handler(event, handler)
    client.add_event_handler("session_start", on_start)
    client.add_event_handler("failed_auth", on_fail)
    client.connect(host="127.0.0.1", port=harness.port())
    await asyncio.wait_for(started, 15)
    return client


async def disconnect(*clients: Any) -> None:
    # all at once: waiting for each in turn would add up the timeouts
    done = {asyncio.ensure_future(client.disconnect()) for client in clients}
    if done:
        await asyncio.wait(done, timeout=5)
