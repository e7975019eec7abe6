"""Federation test helpers: a PKI with every kind of peer certificate, and an asyncio pump that
drives a sans-I/O TLS session (ours) over a real loopback socket."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from vines_server import certs

US = "vines.example"
PEER = "peer.example"


@dataclass(frozen=True)
class FederationPKI:
    directory: Path
    ca_file: Path
    """The root CA only (PEM): the trust anchor a `ca_file` would add."""

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"


def make_federation_pki(directory: Path) -> FederationPKI:
    """Certificates for PEER unless named otherwise (leaf first, then what the peer sends):

    good (root-signed, serverAuth+clientAuth), server_only (no clientAuth), intermediate
    (signed by an intermediate CA, sent with it), incomplete (the same leaf sent alone),
    selfsigned, wrongname (for other.example), cn_only (no subjectAltName), srv_only
    (SRVName only), xmpp_only (id-on-xmppAddr only), expired, ours (US, root-signed).
    """
    directory.mkdir(parents=True, exist_ok=True)
    root = certs.make_ca("federation test root")
    inter = certs.make_ca("federation test intermediate", issuer=root)
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(root[0].public_bytes(Encoding.PEM))
    now = dt.datetime.now(dt.UTC)
    variants: dict[str, dict] = {
        "good": {},
        "server_only": {"client_auth": False},
        "wrongname": {"domains": ["other.example"]},
        "srv_only": {"dns_name": False, "xmpp_addr": False, "client_auth": False},
        "xmpp_only": {"dns_name": False, "srv_names": False},
        "expired": {
            "not_before": now - dt.timedelta(days=400),
            "not_after": now - dt.timedelta(days=1),
        },
        "cn_only": {
            "domains": [],
            "common_name": PEER,
            "dns_name": False,
            "xmpp_addr": False,
            "srv_names": False,
        },
        "ours": {"domains": [US]},
    }
    for name, kw in variants.items():
        domains = kw.pop("domains", [PEER])
        cert, key = certs.make_certificate(domains, issuer=root, **kw)
        certs.write_pem(cert, key, *_paths(directory, name))
    leaf, key = certs.make_certificate([PEER], issuer=inter, client_auth=False)
    certs.write_pem([leaf, inter[0]], key, *_paths(directory, "intermediate"))
    certs.write_pem(leaf, key, *_paths(directory, "incomplete"))
    cert, key = certs.make_certificate([PEER])
    certs.write_pem(cert, key, *_paths(directory, "selfsigned"))
    return FederationPKI(directory, ca_file)


def _paths(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / f"{name}.crt", directory / f"{name}.key"


async def pump_handshake(
    session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bytes:
    """Drive `session` (TLSSession-like) until its handshake is done, over a plain socket;
    returns application data that arrived with the last handshake flight."""
    writer.write(session.outgoing())
    early = b""
    while not session.handshake_done:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("peer closed during the TLS handshake")
        early += session.receive(data)
        writer.write(session.outgoing())
    await writer.drain()
    return early


async def pump_read(
    session, reader: asyncio.StreamReader, writer, until: bytes, got: bytes = b""
) -> bytes:
    """Application data from `session` (after `got`, already read) until it holds `until`."""
    while until not in got:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError(f"peer closed before sending {until!r}")
        got += session.receive(data)
        writer.write(session.outgoing())
    return got


async def pump_send(session, writer: asyncio.StreamWriter, data: bytes) -> None:
    session.send(data)
    writer.write(session.outgoing())
    await writer.drain()
