"""Fixtures for the diagnostics: a test PKI, real TLS endpoints, a real dnsmasq zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.probes.endpoint import Endpoint, EndpointConfig
from tests.support.dnsmasq import Dnsmasq

DOMAIN = "example.test"


@dataclass
class Pki:
    dir: Path
    ca: Path  # CA certificate (PEM)

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and end-entity certificates, good and broken, all for example.test unless named."""
    from vines_server.certs import make_ca, make_certificate, write_pem

    d = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = make_ca("vinesctl test CA")
    write_pem(ca_cert, ca_key, d / "ca.crt", d / "ca.key")
    now = dt.datetime.now(dt.UTC)
    variants = {
        "valid": {},
        "expired": {
            "not_before": now - dt.timedelta(days=400),
            "not_after": now - dt.timedelta(days=10),
        },
        "expiring": {"not_after": now + dt.timedelta(days=5)},
        "future": {
            "not_before": now + dt.timedelta(days=10),
            "not_after": now + dt.timedelta(days=400),
        },
        "wrongname": {"domains": ["other.test"]},
        "noxmppaddr": {"xmpp_addr": False, "srv_names": False},
        "rsa": {"key_type": "rsa"},
    }
    for name, kw in variants.items():
        domains = kw.pop("domains", [DOMAIN])
        cert, key = make_certificate(domains, issuer=(ca_cert, ca_key), **kw)
        if name == "valid":
            # served with the CA as intermediate, so the chain has two certificates
            write_pem([cert, ca_cert], key, d / "chain.crt", d / "chain.key")
        write_pem(cert, key, d / f"{name}.crt", d / f"{name}.key")
    cert, key = make_certificate([DOMAIN])  # self-signed
    write_pem(cert, key, d / "selfsigned.crt", d / "selfsigned.key")
    return Pki(d, d / "ca.crt")


@pytest.fixture
def endpoint(pki: Pki) -> Iterator[Callable[..., Endpoint]]:
    """endpoint('valid', direct=False, ...) -> a running Endpoint with that certificate."""
    with ExitStack() as stack:

        def start(cert: str = "valid", **kw: object) -> Endpoint:
            crt, key = pki.pair(cert)
            return stack.enter_context(Endpoint(EndpointConfig(crt, key, **kw)))  # type: ignore[arg-type]

        yield start


@pytest.fixture
def zone() -> Iterator[Callable[[list[str]], Dnsmasq]]:
    """zone(lines) -> a running dnsmasq serving them on 127.0.0.2:<free port>."""
    with ExitStack() as stack:

        def start(lines: list[str]) -> Dnsmasq:
            return stack.enter_context(Dnsmasq(lines))

        yield start
