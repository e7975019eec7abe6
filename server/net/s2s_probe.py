"""Checking federation peers as this server sees them (`vinesctl check --federation`): the
server's own resolution, outbound link, trust store and RFC 6125 matching, stopped once the
peer's certificate is judged."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vines_server.net import resolve
from vines_server.net.peercert import TrustStore
from vines_server.net.s2s import OutboundLink, Peer, connect_each
from vines_server.xmpp.dialback import Correlation
from vines_server.xmpp.parser import ParserLimits
from vines_server.xmpp.s2s import (
    DialbackVerified,
    S2SSettings,
)

if TYPE_CHECKING:
    from vines_server.config import Config


class _ProbePolicy:
    def allows(self, local: str, remote: str) -> bool:
        return True

    def dialback(self, remote: str) -> bool:
        return True  # go on past an unverified certificate: the check reports it


class PeerProbe:
    """What an `OutboundLink` needs of its owner, for one check of one peer: our certificate
    for `local`, the trust store this server uses, no dialback table worth keeping."""

    def __init__(self, config: Config, trust: TrustStore) -> None:
        self.config = config
        self.trust = trust
        self.correlation = Correlation()
        self.settings = S2SSettings(
            domains=frozenset(config.domains),
            preauth_limits=ParserLimits(65536, 4096, 64, 64),
            limits=ParserLimits(65536, 4096, 64, 64),
            policy=_ProbePolicy(),
            secret=secrets.token_bytes(32),
        )

    def certificate(self, domain: str):
        conf = self.config.domains[domain]
        return conf.certificate, conf.key

    def verified(self, answer: DialbackVerified) -> None:
        return None

    def link_lost(self, link: OutboundLink) -> None:
        return None


@dataclass
class PeerCheck:
    """One allowlisted peer as this server would see it."""

    domain: str
    local: str
    dialback: bool  # opted in: an unverified certificate is not the end
    targets: list[str] = field(default_factory=list)  # endpoints in the order tried
    error: str | None = None  # DNS, connection or TLS failure
    address: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    certificate: str | None = None  # "verified" or why not
    identity: str | None = None
    detail: str | None = None


async def check_peer(
    config: Config, trust: TrustStore, local: str, remote: str, timeout: float = 10.0
) -> PeerCheck:
    """Resolve `remote` as the server would (static route, SRV, fallback), connect to the first
    target that answers, STARTTLS or direct TLS presenting our certificate for `local`, and
    judge the peer's certificate for its domain with the server's own trust store."""
    conf = config.federation.peer(remote)
    result = PeerCheck(remote, local, conf.dialback)
    static = (conf.host, conf.port) if conf.host else None
    try:
        targets = await asyncio.wait_for(resolve.endpoints(remote, static=static), timeout)
    except resolve.PeerNotFound as exc:
        result.error = str(exc)
        return result
    except TimeoutError:
        result.error = "DNS timed out"
        return result
    result.targets = [
        f"{t.label} ({'direct TLS' if t.direct_tls else 'STARTTLS'})" for t in targets
    ]
    owner = PeerProbe(config, trust)
    reasons: list[str] = []
    async for endpoint, link in connect_each(owner, Peer(local, remote), targets, timeout, reasons):
        try:
            await asyncio.wait_for(link.judged.wait(), timeout)
        except TimeoutError:
            reasons.append(f"{endpoint.label}: timed out")
            link.close()
            continue
        link.close()
        if "certificate" not in link.info:
            why = link.info.get("error", "closed before TLS")
            reasons.append(f"{endpoint.label}: {why}")
            continue
        info = link.info
        result.address = str(info.get("address"))
        result.tls_version = _str(info.get("tls_version"))
        result.cipher = _str(info.get("cipher"))
        result.certificate = _str(info.get("certificate"))
        result.identity = _str(info.get("identity"))
        result.detail = _str(info.get("detail"))
        return result
    result.error = "; ".join(reasons) or f"no target for {remote}"
    return result


def _str(value: object) -> str | None:
    return str(value) if value else None


async def check_federation(config: Config, timeout: float = 10.0) -> list[PeerCheck]:
    """Every peer of `[federation] allow` (and the peers tables), checked from our first
    hosted domain."""
    trust = TrustStore.load(config.federation.ca_file)
    local = sorted(config.domains)[0]
    peers = sorted(set(config.federation.allow) | set(config.federation.peers))
    return list(
        await asyncio.gather(*(check_peer(config, trust, local, p, timeout) for p in peers))
    )
