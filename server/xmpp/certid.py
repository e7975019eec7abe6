"""RFC 6125 identities of a certificate and their match against an XMPP domain (sans-I/O).

The one implementation of "is this certificate valid for example.net?", used by s2s (both
directions, RFC 6120 section 13.7.1.2, XEP-0178) and by the console's TLS probe.

Presented identifiers, all from the subjectAltName:
- dNSName (DNS-ID): an A-label name; a wildcard only as the whole left-most label;
- SRVName (SRV-ID, RFC 4985, OID 1.3.6.1.5.5.7.8.7): `_xmpp-server.example.net` (s2s),
  `_xmpp-client.example.net` (c2s), and the direct-TLS services `_xmpps-*` (XEP-0368);
- id-on-xmppAddr (OID 1.3.6.1.5.5.7.8.5): the domain as a UTF8String.
The subject CN is never an identity (RFC 6125 section 6.4.4, dropped entirely by RFC 9525):
a peer that accepted it would accept certificates their CA never checked for that name.

Names are compared as IDNA2008 A-labels through `jid.domain_to_ascii`, so `straße.example`
and `xn--strae-oqa.example` are the same domain and `strasse.example` is another one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from .jid import JIDError, domain_to_ascii

__all__ = [
    "OID_SRV_NAME",
    "OID_XMPP_ADDR",
    "Identities",
    "Service",
    "dns_id_matches",
    "identities",
    "match",
]

OID_XMPP_ADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
OID_SRV_NAME = ObjectIdentifier("1.3.6.1.5.5.7.8.7")

Service = Literal["server", "client"]

_EXPLICIT_0 = 0xA0
_STRING_TAGS = (0x0C, 0x16, 0x13)  # UTF8String, IA5String, PrintableString


@dataclass(frozen=True, slots=True)
class Identities:
    """The identifiers a certificate presents (as written in it)."""

    dns_names: tuple[str, ...] = ()
    srv_names: tuple[str, ...] = ()
    xmpp_addrs: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dns_names or self.srv_names or self.xmpp_addrs)

    def describe(self) -> list[str]:
        """Every identifier, labelled, for messages ('certificate is for ...')."""
        return (
            list(self.dns_names)
            + [f"SRV:{n}" for n in self.srv_names]
            + [f"xmpp:{n}" for n in self.xmpp_addrs]
        )


def _der_string(data: bytes) -> str | None:
    """The text of one DER string (UTF8/IA5/Printable), also inside an explicit [0] wrapper;
    None for anything else, truncated or undecodable (a hostile certificate matches nothing)."""
    if len(data) >= 2 and data[0] == _EXPLICIT_0:
        data = data[2:] if data[1] < 0x80 else data[2 + (data[1] & 0x7F) :]
    if len(data) < 2 or data[0] not in _STRING_TAGS:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[2 : 2 + count], "big")
        offset = 2 + count
    body = data[offset : offset + length]
    if len(body) != length:
        return None
    try:
        return body.decode("utf-8" if data[0] == 0x0C else "ascii")
    except UnicodeDecodeError:
        return None


def identities(cert: x509.Certificate) -> Identities:
    """The RFC 6125 identifiers of `cert` (empty when it has no usable subjectAltName)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return Identities()
    srv: list[str] = []
    xmpp: list[str] = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id not in (OID_SRV_NAME, OID_XMPP_ADDR):
            continue
        text = _der_string(other.value)
        if text is not None:
            (srv if other.type_id == OID_SRV_NAME else xmpp).append(text)
    return Identities(tuple(san.get_values_for_type(x509.DNSName)), tuple(srv), tuple(xmpp))


def _ascii(name: str) -> str | None:
    try:
        return domain_to_ascii(name)
    except JIDError:
        return None


def dns_id_matches(pattern: str, domain: str) -> bool:
    """RFC 6125 section 6.4: a DNS-ID `pattern` against an A-label `domain`, case-insensitive;
    `*` only as the whole left-most label, standing for exactly one label, and never directly
    under a public one-label name (`*.net`)."""
    pattern = pattern.rstrip(".").lower()
    domain = domain.rstrip(".").lower()
    if not pattern or not domain:
        return False
    if pattern == domain:
        return True
    if not pattern.startswith("*."):
        return False
    rest = pattern[2:]
    head, _, tail = domain.partition(".")
    return bool(head) and tail == rest and "*" not in rest and "." in rest


def match(ids: Identities, domain: str, service: Service = "server") -> str:
    """How `ids` identifies `domain` for `service` ('DNS-ID chat.example.net', 'SRV-ID ...',
    'XmppAddr ...'), or '' when it does not. An unpreparable `domain` matches nothing."""
    target = _ascii(domain)
    if target is None:
        return ""
    for name in ids.dns_names:
        if dns_id_matches(name, target):
            return f"DNS-ID {name}"
    wanted = (f"_xmpp-{service}", f"_xmpps-{service}")
    for name in ids.srv_names:
        label, _, host = name.partition(".")
        if label.lower() in wanted and host and "*" not in host and _ascii(host) == target:
            return f"SRV-ID {name}"
    for name in ids.xmpp_addrs:
        # a domain's xmppAddr is a bare domain: user@ or /resource forms name something else
        if "@" not in name and "/" not in name and _ascii(name) == target:
            return f"XmppAddr {name}"
    return ""
