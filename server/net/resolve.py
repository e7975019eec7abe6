"""Where to connect for an outbound s2s stream (RFC 6120 section 3.2, XEP-0368, RFC 2782).

1. A static route for the peer (`[federation.peers."domain"] host`, `port`) wins: no DNS at all
   (split DNS, private peers, tests).
2. Else `_xmpps-server._tcp` (direct TLS) and `_xmpp-server._tcp` (STARTTLS) are asked at once
   and their records merged into one RFC 2782 order (`xmpp/srv.py`).
3. A service whose only record has the target `.` is declared absent: it gives no endpoint and
   forbids the fallback; when no service is left the peer has no XMPP server (PeerNotFound,
   bounced `remote-server-not-found`).
4. No record at all (or a DNS failure): the domain itself on 5269 with STARTTLS. Its address,
   like every target's, comes from the system resolver (`addresses`), which reads the hosts
   file; dnspython would not.

The choice itself is the pure `plan()`, tested with a seeded random source; `endpoints()` adds
the DNS queries.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
from vines_server.xmpp.jid import JIDError, domain_to_ascii
from vines_server.xmpp.srv import rfc2782_order

__all__ = [
    "DEFAULT_PORT",
    "SERVICES",
    "Endpoint",
    "PeerNotFound",
    "ServiceAnswer",
    "SrvRecord",
    "addresses",
    "endpoints",
    "plan",
]

DEFAULT_PORT = 5269
#: SRV service label -> direct TLS (XEP-0368) or STARTTLS.
SERVICES: Mapping[str, bool] = {"_xmpps-server": True, "_xmpp-server": False}


class PeerNotFound(Exception):
    """No way to reach the peer domain (bounce `remote-server-not-found`); the text says why."""


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str
    """A-label host name without the final dot; '.' stays '.'."""


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """What DNS said for one SRV name: records, or none, or an error text."""

    records: tuple[SrvRecord, ...] = ()
    error: str = ""

    @property
    def absent(self) -> bool:
        """A single `.` target: the service is declared unavailable (RFC 2782)."""
        return len(self.records) == 1 and self.records[0].target == "."


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    direct_tls: bool
    source: str
    """'static', 'srv' or 'fallback'."""
    priority: int = 0
    weight: int = 0

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _domain(domain: str) -> str:
    try:
        return domain_to_ascii(domain)
    except JIDError as exc:
        raise PeerNotFound(f"{domain!r} is not a domain name ({exc})") from None


def plan(
    domain: str,
    answers: Mapping[str, ServiceAnswer],
    *,
    static: tuple[str, int] | None = None,
    rng: random.Random | None = None,
) -> list[Endpoint]:
    """The endpoints to try, in order, for `domain` given the SRV `answers` per service label.
    Raises PeerNotFound when every service is declared absent."""
    if static is not None:
        host, port = static
        return [Endpoint(host, port, False, "static")]
    candidates: list[Endpoint] = []
    absent = False
    for service, direct in SERVICES.items():
        answer = answers.get(service, ServiceAnswer())
        if answer.absent:
            absent = True
            continue
        candidates += [
            Endpoint(r.target, r.port, direct, "srv", r.priority, r.weight)
            for r in answer.records
            if r.target != "."
        ]
    if candidates:
        return rfc2782_order(candidates, rng)
    if absent:
        raise PeerNotFound(f"{domain} declares that it has no XMPP server (SRV target '.')")
    return [Endpoint(_domain(domain), DEFAULT_PORT, False, "fallback")]


async def _ask(resolver: dns.asyncresolver.Resolver, name: str) -> ServiceAnswer:
    try:
        answer = await resolver.resolve(name, "SRV")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ServiceAnswer()
    except dns.exception.DNSException as exc:
        return ServiceAnswer(error=f"{name}: {exc.__class__.__name__}")
    return ServiceAnswer(
        tuple(
            SrvRecord(r.priority, r.weight, r.port, r.target.to_text(omit_final_dot=True) or ".")
            for r in answer
        )
    )


async def endpoints(
    domain: str,
    *,
    static: tuple[str, int] | None = None,
    resolver: dns.asyncresolver.Resolver | None = None,
    rng: random.Random | None = None,
) -> list[Endpoint]:
    """The endpoints for an outbound stream to `domain`, in the order to try them. A DNS error
    falls back to the domain itself, as RFC 6120 section 3.2.2 says; the resolver's own
    timeout (`lifetime`) bounds the wait."""
    if static is not None:
        return plan(domain, {}, static=static)
    name = _domain(domain)
    res = resolver or dns.asyncresolver.Resolver()
    services = list(SERVICES)
    answers = await asyncio.gather(*(_ask(res, f"{s}._tcp.{name}.") for s in services))
    return plan(domain, dict(zip(services, answers, strict=True)), rng=rng)


async def addresses(endpoint: Endpoint) -> Sequence[tuple[int, tuple]]:
    """(family, socket address) pairs for `endpoint` from the system resolver (hosts file
    included), in its preference order. Raises PeerNotFound when the name has none."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise PeerNotFound(f"{endpoint.host} has no address ({exc})") from None
    return list(dict.fromkeys((family, addr) for family, _t, _p, _c, addr in infos))
