"""Certificates of a bundled server on disk: read what a domain serves, check a pair before it
is installed, and install it over the files vines.toml names.

The checks an import makes before anything is written (each failure one sentence naming the
cause): the files parse as a PEM chain and a private key; the key belongs to the certificate
(OpenSSL's own load_cert_chain check); the names cover the domain (RFC 6125 as the TLS probe
matches them: DNS-ID, SRV-ID, XmppAddr); no certificate of the chain has expired or is not yet
valid; and the chain verifies from the leaf to a trust anchor in a real TLS handshake in memory:
the anchors are --ca when given, else the system store, else the chain's own self-signed root
(a private CA or a self-signed certificate, said so in the result).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from vinesctl.probes.tls import CertInfo, cert_info, match_identity, names_of

LETSENCRYPT_CHAIN = "fullchain.pem"
LETSENCRYPT_KEY = "privkey.pem"


class CertProblem(Exception):
    """A certificate or key that must not be installed; the message says why, `fix` what to do."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass
class DomainCertificate:
    domain: str
    certificate: str
    key: str
    chain: list[CertInfo] = field(default_factory=list)
    identity: str = ""  # how the leaf names the domain; "" when it does not
    names: list[str] = field(default_factory=list)
    error: str | None = None  # the files could not be read

    @property
    def leaf(self) -> CertInfo | None:
        return self.chain[0] if self.chain else None


def read_chain(data: bytes, source: str) -> list[bytes]:
    """The DER certificates of a PEM file, leaf first."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertProblem(
            f"{source} holds no PEM certificate", "give the certificate chain in PEM form"
        ) from None
    return [c.public_bytes(Encoding.DER) for c in certs]


def describe(domain: str, cert_path: Path, key_path: Path) -> DomainCertificate:
    """What a domain's configured files hold (never raises: an unreadable file is `error`)."""
    result = DomainCertificate(domain, str(cert_path), str(key_path))
    try:
        ders = read_chain(cert_path.read_bytes(), str(cert_path))
    except OSError as exc:
        result.error = f"cannot read {cert_path} ({exc.strerror})"
        return result
    except CertProblem as exc:
        result.error = str(exc)
        return result
    result.chain = [cert_info(der, i) for i, der in enumerate(ders)]
    result.identity = match_identity(result.chain[0], domain)
    result.names = names_of(result.chain[0])
    return result


@dataclass
class CheckedPair:
    chain_pem: bytes
    key_pem: bytes
    chain: list[CertInfo]
    domains: list[str]  # the hosted domains the leaf names, in the order asked
    anchor: str  # what the chain was verified against


def check_pair(
    cert_file: Path, key_file: Path, domains: list[str], ca: Path | None, now: datetime
) -> CheckedPair:
    """Checks a certificate chain and key for `domains` (those the leaf names; CertProblem when
    it names none of them). Nothing is written."""
    chain_pem = _read(cert_file, "certificate")
    key_pem = _read(key_file, "key")
    ders = read_chain(chain_pem, str(cert_file))
    chain = [cert_info(der, i) for i, der in enumerate(ders)]
    _check_key(chain_pem, key_pem, cert_file, key_file)
    covered = [d for d in domains if match_identity(chain[0], d)]
    if not covered:
        raise CertProblem(
            f"{cert_file} names {', '.join(names_of(chain[0])) or 'nothing'}, "
            f"not {' or '.join(domains)}",
            "get a certificate whose subjectAltName has the domain",
        )
    for info in chain:
        which = "the certificate" if info.index == 0 else f"chain certificate {info.index}"
        if info.not_after <= now:
            raise CertProblem(
                f"{which} in {cert_file} expired on {info.not_after:%Y-%m-%d}",
                "renew it (certbot renew) and import the new one",
            )
        if info.not_before > now:
            raise CertProblem(
                f"{which} in {cert_file} is not valid before {info.not_before:%Y-%m-%d %H:%M}",
                "check this machine's clock, or wait",
            )
    anchor = _verify_chain(chain_pem, key_pem, ders, ca, cert_file)
    return CheckedPair(chain_pem, key_pem, chain, covered, anchor)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertProblem(f"cannot read the {what} {path} ({exc.strerror})") from None


def _files(chain_pem: bytes, key_pem: bytes) -> tuple[tempfile.TemporaryDirectory, str, str]:
    """ssl wants paths: the pair in a private temporary directory (the key is a secret)."""
    tmp = tempfile.TemporaryDirectory(prefix="vinesctl-cert-")
    os.chmod(tmp.name, 0o700)
    cert_path, key_path = os.path.join(tmp.name, "chain.pem"), os.path.join(tmp.name, "key.pem")
    for path, data in ((cert_path, chain_pem), (key_path, key_pem)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return tmp, cert_path, key_path


def _check_key(chain_pem: bytes, key_pem: bytes, cert_file: Path, key_file: Path) -> None:
    tmp, cert_path, key_path = _files(chain_pem, key_pem)
    with tmp:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            if "mismatch" in str(exc).lower():
                raise CertProblem(
                    f"the key {key_file} does not belong to the certificate {cert_file}",
                    "give the key the certificate was issued for",
                ) from None
            raise CertProblem(
                f"{key_file} is not a usable private key ({exc.reason or exc})",
                "give the unencrypted PEM key (certbot: privkey.pem)",
            ) from None


def _verify_chain(
    chain_pem: bytes, key_pem: bytes, ders: list[bytes], ca: Path | None, cert_file: Path
) -> str:
    """A TLS handshake in memory, this chain served, a client verifying it; the anchor used."""
    if ca is not None:
        anchors = [(f"--ca {ca}", {"cafile": str(ca)})]
    else:
        anchors = [("the system's trust store", {})]
        last = ders[-1]
        from cryptography import x509

        root = x509.load_der_x509_certificate(last)
        if root.subject == root.issuer:
            what = "self-signed" if len(ders) == 1 else "its own root (a private CA)"
            anchors.append((f"the chain as given: {what}", {"cadata": last}))
    error = ""
    tmp, cert_path, key_path = _files(chain_pem, key_pem)
    with tmp:
        for name, where in anchors:
            error = _handshake(cert_path, key_path, where)
            if not error:
                return name
    hint = "pass --ca ROOT.pem for a private CA" if ca is None else "check --ca"
    raise CertProblem(
        f"the chain in {cert_file} does not verify: {error}",
        f"use the full chain (certbot: fullchain.pem), or {hint}",
    )


def _handshake(cert_path: str, key_path: str, anchors: dict) -> str:
    """'' when a client trusting `anchors` accepts the chain, else OpenSSL's reason."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False  # names are checked by RFC 6125 rules above
    if anchors:
        client.load_verify_locations(**anchors)
    else:
        client.load_default_certs()
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLCertVerificationError as exc:
                return exc.verify_message or str(exc)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return str(exc.reason or exc)
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        try:
            if c.version() and s.version():
                c.do_handshake()
                return ""
        except ssl.SSLWantReadError:
            continue
        except ssl.SSLError as exc:
            return getattr(exc, "verify_message", None) or str(exc.reason or exc)
    return "the handshake did not finish"


def install(pair: CheckedPair, cert_path: Path, key_path: Path) -> None:
    """Over the configured files, each replaced atomically (the key 0600, the chain 0644). The
    server reads them again only when signalled, after both are in place."""
    from vines_server.certs import write_atomic

    for path in (cert_path, key_path):
        if path.is_symlink():  # e.g. into certbot's live/: replacing the link would break it
            raise CertProblem(
                f"{path} is a link to {os.readlink(path)}, kept current by another tool",
                "after it renews, just reload ('kill -HUP' the server), or point vines.toml "
                "at files of the server's own and import into them",
            )
    write_atomic(key_path, pair.key_pem, 0o600)
    write_atomic(cert_path, pair.chain_pem, 0o644)


def lineages(directory: Path) -> list[Path]:
    """Let's Encrypt lineage directories: DIR itself (live/DOMAIN, certbot's RENEWED_LINEAGE)
    or each DOMAIN under DIR (live/)."""
    if (directory / LETSENCRYPT_CHAIN).is_file():
        return [directory]
    found = [d for d in sorted(directory.iterdir()) if (d / LETSENCRYPT_CHAIN).is_file()]
    if not found:
        raise CertProblem(
            f"{directory} holds no {LETSENCRYPT_CHAIN}, nor DOMAIN/{LETSENCRYPT_CHAIN}",
            "give certbot's live/ directory or one of its domain directories",
        )
    return found


def utcnow() -> datetime:
    return datetime.now(UTC)
