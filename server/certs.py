"""Certificate generation for the bundled server, the tests and the diagnostics.

Keys are ECDSA P-256 (default) or RSA-2048; signatures are always SHA-256. Ed25519 is never used:
SCRAM's `tls-server-end-point` channel binding (RFC 5929) is undefined for it.

Subject alternative names follow RFC 6120 section 13.7.1.2.1 and XEP-0178:

- a dNSName per domain (A-label),
- an otherName id-on-xmppAddr (1.3.6.1.5.5.7.8.5) holding a UTF8String (`xmpp_addr=True`),
- otherNames SRVName (1.3.6.1.5.5.7.8.7, RFC 4985) holding IA5Strings `_xmpp-client.<domain>` and
  `_xmpp-server.<domain>` (`srv_names=True`).

The helpers are deliberately general so tests can build every broken variant (expired, not yet
valid, wrong name, self-signed, missing xmppAddr) with the same functions.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vines_server.xmpp.certid import OID_SRV_NAME, OID_XMPP_ADDR, identities
from vines_server.xmpp.jid import domain_to_ascii, normalize_domainpart

__all__ = [
    "OID_SRV_NAME",
    "OID_XMPP_ADDR",
    "PrivateKey",
    "dns_names",
    "ensure_domain_certificate",
    "load_certificate",
    "make_ca",
    "make_certificate",
    "make_key",
    "srv_names",
    "write_pem",
    "xmpp_addrs",
]

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: Validity of generated certificates when no `not_after` is given.
DEFAULT_LIFETIME = _dt.timedelta(days=825)
CA_LIFETIME = _dt.timedelta(days=3650)
#: Backdate `not_before` a little so clocks that lag slightly accept a fresh certificate.
_BACKDATE = _dt.timedelta(minutes=5)

_UTF8STRING = 0x0C
_IA5STRING = 0x16


def make_key(key_type: KeyType = "ec") -> PrivateKey:
    """A new private key: ECDSA P-256 (`'ec'`) or RSA-2048 (`'rsa'`)."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported key type {key_type!r}: use 'ec' or 'rsa'")


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _alabel(domain: str) -> str:
    """The ASCII (A-label) form of a domain, lower case, without a trailing dot (IDNA2008: the
    standard library's IDNA2003 codec would turn straße into strasse)."""
    return domain_to_ascii(domain)


def _ulabel(domain: str) -> str:
    """The Unicode (U-label) form of a domain, as carried in an xmppAddr."""
    return normalize_domainpart(domain)


def _der_string(tag: int, value: bytes) -> bytes:
    """DER TLV for a primitive string type."""
    length = len(value)
    if length < 0x80:
        header = bytes([tag, length])
    else:
        raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
        header = bytes([tag, 0x80 | len(raw)]) + raw
    return header + value


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(
    common_name: str,
    *,
    key_type: KeyType = "ec",
    not_before: _dt.datetime | None = None,
    not_after: _dt.datetime | None = None,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate authority (for tests and private deployments): self-signed, or an
    intermediate signed by `issuer` (a `(certificate, key)` pair)."""
    key = make_key(key_type)
    start = not_before or _now() - _BACKDATE
    end = not_after or start + CA_LIFETIME
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    issuer_name, signing_key = _name(common_name), key
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    if issuer is not None:
        issuer_name, signing_key = issuer[0].subject, issuer[1]
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[0].public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
        .sign(signing_key, hashes.SHA256())
    )
    return cert, key


def make_certificate(
    domains: list[str],
    *,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    not_before: _dt.datetime | None = None,
    not_after: _dt.datetime | None = None,
    xmpp_addr: bool = True,
    srv_names: bool = True,
    dns_name: bool = True,
    client_auth: bool = True,
    key_type: KeyType = "ec",
    common_name: str | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """An end-entity certificate for `domains` (the first one is the subject CN).

    `issuer` is a `(certificate, key)` pair such as `make_ca()` returns; without it the
    certificate is self-signed. `not_before`/`not_after` default to "five minutes ago" and
    825 days later; pass past dates for an expired certificate. `xmpp_addr` and `srv_names`
    control the XMPP otherNames (see the module docstring); `dns_name=False` leaves out the
    dNSNames. `client_auth=False` gives a serverAuth-only certificate, as public CAs issue
    since 2026.
    """
    if not domains and common_name is None:
        raise ValueError("a certificate needs at least one domain")
    key = make_key(key_type)
    start = not_before or _now() - _BACKDATE
    end = not_after or max(start, _now()) + DEFAULT_LIFETIME
    if end <= start:
        raise ValueError("not_after must be later than not_before")

    san: list[x509.GeneralName] = []
    for domain in domains if dns_name else ():
        san.append(x509.DNSName(_alabel(domain)))
    for domain in domains:
        if xmpp_addr:
            value = _der_string(_UTF8STRING, _ulabel(domain).encode("utf-8"))
            san.append(x509.OtherName(OID_XMPP_ADDR, value))
        if srv_names:
            for service in ("_xmpp-client", "_xmpp-server"):
                value = _der_string(_IA5STRING, f"{service}.{_alabel(domain)}".encode("ascii"))
                san.append(x509.OtherName(OID_SRV_NAME, value))

    subject = _name(common_name if common_name is not None else _alabel(domains[0]))
    if issuer is None:
        issuer_name, signing_key = subject, key
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    else:
        issuer_cert, signing_key = issuer
        issuer_name = issuer_cert.subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())

    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=key_type == "rsa",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            # clientAuth too: a server presents the same certificate on outgoing s2s links.
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH]
                + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(signing_key, hashes.SHA256()), key


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` through a temporary file created with `mode`, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_pem(
    cert: x509.Certificate | list[x509.Certificate],
    key: PrivateKey,
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> None:
    """Write the certificate (or a chain, leaf first) and the unencrypted PKCS#8 key as PEM.

    The key file is created with mode 0600 (never readable by others, not even briefly); the
    certificate file gets 0644.
    """
    chain = cert if isinstance(cert, list) else [cert]
    cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(Path(key_path), key_pem, 0o600)
    _write_atomic(Path(cert_path), cert_pem, 0o644)


def ensure_domain_certificate(
    domain: str, directory: str | os.PathLike[str], *, key_type: KeyType = "ec"
) -> tuple[Path, Path]:
    """Paths `<directory>/<domain>.crt` and `.key`; generate a self-signed pair if missing.

    An existing pair is kept untouched (an administrator may have replaced it with a real one).
    When only one of the two files exists, both are regenerated.
    """
    directory = Path(directory)
    name = _alabel(domain)
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate([domain], key_type=key_type)
    write_pem(cert, key, cert_path, key_path)
    return cert_path, key_path


def load_certificate(path_or_data: str | os.PathLike[str] | bytes) -> x509.Certificate:
    """The first certificate of a PEM file (path) or of PEM/DER bytes."""
    data = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def dns_names(cert: x509.Certificate) -> list[str]:
    """The dNSName entries of the certificate's subjectAltName."""
    return list(identities(cert).dns_names)


def xmpp_addrs(cert: x509.Certificate) -> list[str]:
    """The id-on-xmppAddr otherNames (UTF8String values)."""
    return list(identities(cert).xmpp_addrs)


def srv_names(cert: x509.Certificate) -> list[str]:
    """The SRVName otherNames (IA5String values such as `_xmpp-client.example.com`)."""
    return list(identities(cert).srv_names)
