"""Verification of a federation peer's certificate, after the TLS handshake (XEP-0178).

The handshake never decides (see `s2stls.py`): it lets any certificate through, and this module
judges the chain the peer presented against the system store plus the optional
`[federation] ca_file`, then the names against the peer *domain* with our RFC 6125 code.
The chain is checked with `cryptography`'s X.509 verification under the web PKI profile, with
two changes: the leaf may carry serverAuth or clientAuth (or no EKU at all), because since 2026
public CAs issue serverAuth-only certificates and servers present them on outbound s2s too
(Prosody accepts them the same way); and a leaf without subjectAltName fails on its names
("not valid for ..."), which is what its administrator must fix, not on its chain.
Its name check (DNS and IP only) is not used: SRVName and id-on-xmppAddr identities count for
XMPP, so `certid.match` decides the name.

The verdict's `reason` is the text an administrator reads in `vinesctl s2s` and a peer reads in
the `not-authorized` stream error: "certificate not trusted", "not valid for example.net",
"certificate expired", ...
"""

from __future__ import annotations

import datetime as _dt
import os
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from vines_server.xmpp.certid import Service, identities, match

__all__ = ["Failure", "TrustStore", "Verdict", "verify_peer"]

#: Purposes a peer's leaf may carry: a server certificate serves both directions of s2s.
_PURPOSES = frozenset(
    {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    }
)
_PEM_END = b"-----END CERTIFICATE-----"


class Failure(Enum):
    """Why a peer's certificate does not authenticate its domain (first failure wins)."""

    NO_CERTIFICATE = "no certificate"
    EXPIRED = "certificate expired"
    NOT_YET_VALID = "certificate not yet valid"
    NOT_TRUSTED = "certificate not trusted"
    WRONG_NAME = "not valid for"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement on one peer certificate for one domain."""

    domain: str
    failure: Failure | None = None
    identity: str = ""
    """How the certificate names the domain ('DNS-ID example.net'), '' when it does not."""
    detail: str = ""
    """The verifier's own words when the chain failed, for logs and `vinesctl s2s`."""

    @property
    def verified(self) -> bool:
        return self.failure is None

    @property
    def reason(self) -> str:
        """'' when verified, else the one-line reason ('not valid for example.net')."""
        if self.failure is None:
            return ""
        if self.failure is Failure.WRONG_NAME:
            return f"not valid for {self.domain}"
        return self.failure.value


def _ee_purpose(_policy: object, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None):
    if eku is not None and not _PURPOSES.intersection(eku):
        raise ValueError("the certificate is for neither serverAuth nor clientAuth")


def _load_pem_bundle(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle that `cryptography` accepts; one odd certificate in a
    system bundle (a negative serial, say) must not make the whole store unusable."""
    found: list[x509.Certificate] = []
    for block in data.split(_PEM_END):
        start = block.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0:
            continue
        try:
            with warnings.catch_warnings():  # e.g. a legacy root's non-positive serial
                warnings.simplefilter("ignore")
                found.append(x509.load_pem_x509_certificate(block[start:] + _PEM_END))
        except ValueError:
            continue
    return found


def _system_bundle() -> list[x509.Certificate]:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return _load_pem_bundle(Path(candidate).read_bytes())
    directory = paths.capath or paths.openssl_capath
    if directory and os.path.isdir(directory):
        certs: list[x509.Certificate] = []
        for entry in sorted(Path(directory).glob("*.pem")):
            certs.extend(_load_pem_bundle(entry.read_bytes()))
        return certs
    return []


class TrustStore:
    """Trust anchors for peers: the system store, plus `ca_file` when configured. Build it once
    (reading the system bundle takes a while) and share it between streams."""

    __slots__ = ("_store", "size")

    def __init__(self, anchors: Sequence[x509.Certificate]) -> None:
        if not anchors:
            raise ValueError("no trust anchors: install ca-certificates or set ca_file")
        self._store = Store(list(anchors))
        self.size = len(anchors)

    @classmethod
    def load(
        cls, ca_file: str | os.PathLike[str] | None = None, *, system: bool = True
    ) -> TrustStore:
        """System store (unless `system=False`, for tests) plus the PEM `ca_file`. Raises
        ValueError naming `ca_file` when it holds no certificate, OSError when unreadable."""
        anchors = _system_bundle() if system else []
        if ca_file is not None:
            extra = _load_pem_bundle(Path(ca_file).read_bytes())
            if not extra:
                raise ValueError(f"{os.fspath(ca_file)} holds no PEM certificate")
            anchors += extra
        return cls(anchors)

    def verify_chain(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], now: _dt.datetime
    ) -> str:
        """'' when `leaf` chains to an anchor at `now`, else the verifier's reason."""
        ee_policy = (
            ExtensionPolicy.webpki_defaults_ee()
            .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ee_purpose)
            # a leaf without subjectAltName is judged by its (missing) names, not its chain
            .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        )
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
            .build_client_verifier()  # no name check here: certid.match does XMPP's
        )
        try:
            verifier.verify(leaf, list(intermediates))
        except VerificationError as exc:
            return str(exc) or "the chain does not lead to a trusted CA"
        return ""


def verify_peer(
    chain: Sequence[x509.Certificate],
    domain: str,
    trust: TrustStore,
    *,
    service: Service = "server",
    now: _dt.datetime | None = None,
) -> Verdict:
    """Judge the certificates a peer presented (leaf first) for `domain`.

    Checked in the order an administrator fixes them: a certificate at all, its dates, its
    chain, its names. The identity is reported even when the chain fails, so both show.
    """
    if not chain:
        return Verdict(domain, Failure.NO_CERTIFICATE)
    leaf, intermediates = chain[0], chain[1:]
    when = now or _dt.datetime.now(_dt.UTC)
    identity = match(identities(leaf), domain, service)
    if leaf.not_valid_after_utc < when:
        return Verdict(domain, Failure.EXPIRED, identity)
    if leaf.not_valid_before_utc > when:
        return Verdict(domain, Failure.NOT_YET_VALID, identity)
    detail = trust.verify_chain(leaf, intermediates, when)
    if detail:
        return Verdict(domain, Failure.NOT_TRUSTED, identity, detail)
    if not identity:
        return Verdict(domain, Failure.WRONG_NAME)
    return Verdict(domain, None, identity)
